// ESLint flat config: @eslint/js recommended + typescript-eslint recommended (the syntactic set;
// tsc --noEmit already checks types, in CI and `npm run typecheck`). `npm run lint`.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', 'coverage/', '.tap/', 'bench/results/', 'data/', 'packages/*/dist/', 'packages/*/.tap/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
    },
    rules: {
      // An argument or caught error that must be named to reach the next one (Fastify hooks,
      // error handlers) says so with a leading underscore.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `let [name, value] = ...` where only value is reassigned stays one destructuring.
      'prefer-const': ['error', { destructuring: 'all' }],
    },
  },
  {
    // Kysely's documented migration signature: a migration sees the database as it was when the
    // migration was written, never the application's current schema type (and migrations are
    // never edited once merged). The migrator that runs them takes the same type.
    files: ['migrations/**/*.ts', 'src/db/migrate.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Tests take tokens and response bodies apart as plain JSON (decodeJwt, res.json()) and
    // assert on them; typing every such value would add casts, not safety.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
)
