// `npm start`'s first step (package.json "prestart"): the TypeScript of src/, schemas/,
// migrations/ and scripts/ transpiled to dist/ by esbuild, one file each, types stripped and not
// checked (about a second; `npm run build` is tsc, which checks them, as CI and the Docker build
// do). The server then runs as compiled JavaScript on plain node: run through tsx instead, the
// process held about 90 MB more at rest (tsx's module hooks and their thread, the TypeScript and
// source maps of every loaded file: docs/operations.md, "Memory"). dist/ is emptied first, so a
// deleted source leaves nothing behind.
import { readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIRECTORIES = ['src', 'schemas', 'migrations', 'scripts']

function sources(directory: string): string[] {
  return readdirSync(path.join(ROOT, directory), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => path.join(directory, file))
}

const started = performance.now()
const entryPoints = DIRECTORIES.flatMap(sources)
rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true })
await build({
  absWorkingDir: ROOT,
  entryPoints,
  outdir: 'dist',
  outbase: '.',
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning'
})
if (process.argv.includes('--verbose')) console.log(`transpiled ${entryPoints.length} files to dist/ in ${Math.round(performance.now() - started)} ms`)
