// checkPasswordPolicy on plain values (src/services/password-policy.ts). Its speed is not asserted
// (speed is the benchmark's business, never a timed test): the structure that makes it cheap is
// (one Set lookup, string work bounded by the length limit), and the average is printed.
import t from 'tap'
import { RegisterRequestSchema, PasswordChangeRequestSchema } from '../../schemas/auth.js'
import {
  COMMON_PASSWORDS,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  assertPasswordAllowed,
  checkPasswordPolicy
} from '../../src/services/password-policy.js'
import { ServiceError } from '../../src/services/errors.js'
import { PASSWORD } from '../helper.js'

const EMAIL = 'Ada.Lovelace@Example.com'
const reason = (password: string, email = EMAIL, displayName?: string | null) => checkPasswordPolicy(password, email, displayName)?.reason

t.test('the common list is a Set of tens of thousands of lower-case entries, built once', async (t) => {
  t.ok(COMMON_PASSWORDS instanceof Set, 'a Set: one hash lookup per check')
  t.ok(COMMON_PASSWORDS.size >= 40_000, `${COMMON_PASSWORDS.size} entries`)
  const usable = [...COMMON_PASSWORDS].filter((word) => [...word].length >= PASSWORD_MIN_LENGTH).length
  t.ok(usable >= 10_000, `${usable} of them are long enough to pass the length rule`)
  t.ok([...COMMON_PASSWORDS].every((word) => word === word.toLowerCase()), 'every entry is lower-case')
  for (const word of ['password', '12345678', 'qwertyui', 'iloveyou', 'password1', 'sunshine']) t.ok(COMMON_PASSWORDS.has(word), word)
  t.notOk(COMMON_PASSWORDS.has(PASSWORD), 'the test suite\'s password is not on it')
  const again = await import('../../src/services/password-policy.js')
  t.equal(again.COMMON_PASSWORDS, COMMON_PASSWORDS, 'the module, and so the Set, is loaded once')
})

t.test('the length rules are the schema\'s, counted in code points like the schema', async (t) => {
  for (const schema of [RegisterRequestSchema.properties.password, PasswordChangeRequestSchema.properties.new_password]) {
    t.equal(schema.minLength, PASSWORD_MIN_LENGTH)
    t.equal(schema.maxLength, PASSWORD_MAX_LENGTH)
  }
  t.equal(reason('a'.repeat(7)), 'too_short')
  t.equal(reason(''), 'too_short')
  t.equal(reason('a7c9e1g3'), undefined, '8 characters pass')
  t.equal(reason('x'.repeat(256)), undefined, '256 characters pass')
  t.equal(reason('x'.repeat(257)), 'too_long')
  t.equal(reason('x'.repeat(1_000_000)), 'too_long', 'a huge input is refused after counting 257')
  t.equal(reason('🔑'.repeat(7)), 'too_short', '7 code points (14 UTF-16 units) are too short')
  t.equal(reason('🔑'.repeat(8)), undefined, '8 code points pass')
  t.equal(reason('🔑'.repeat(256)), undefined, '256 code points (512 UTF-16 units) pass')
})

t.test('common passwords are refused whatever their case', async (t) => {
  for (const password of ['password', 'PASSWORD', 'PassWord', '12345678', 'qwertyui', 'QwertyUI', 'iloveyou1']) {
    t.same(checkPasswordPolicy(password, EMAIL), { reason: 'common', message: 'This password is too common' }, password)
  }
  t.equal(reason(' password'), undefined, 'a different password is a different password (no trimming)')
})

t.test('the email, its local part and the display name are refused, case-insensitively', async (t) => {
  t.same(checkPasswordPolicy('ada.lovelace@example.com', EMAIL), { reason: 'email', message: 'The password must not be your email address' })
  t.equal(reason('ADA.LOVELACE@EXAMPLE.COM'), 'email')
  t.equal(reason('Ada.Lovelace@Example.com', ' ada.lovelace@example.com '), 'email', 'the email is compared trimmed, as it is stored')
  t.same(checkPasswordPolicy('ADA.lovelace', EMAIL), {
    reason: 'email_local_part',
    message: 'The password must not be the part of your email address before the @'
  })
  t.equal(reason('"a@b"quoted', '"a@b"quoted@example.com'), 'email_local_part', 'the local part ends at the last @')
  t.same(checkPasswordPolicy('countess of lovelace', EMAIL, ' Countess of Lovelace '), {
    reason: 'display_name',
    message: 'The password must not be your display name'
  })
  t.equal(reason('countess of lovelace', EMAIL, null), undefined, 'no display name, nothing to compare')
  t.equal(reason('countess of lovelace', EMAIL, ''), undefined)
  t.equal(reason('ada.lovelace@example.org'), undefined, 'another address is fine')
  t.equal(reason('ada.lovelace!'), undefined, 'containing the local part is fine: only equality is refused')
  t.equal(reason(PASSWORD, EMAIL, 'Ada'), undefined, 'a strong password passes')
})

t.test('assertPasswordAllowed throws AUTH_WEAK_PASSWORD with the reason\'s message', async (t) => {
  t.throws(() => assertPasswordAllowed('password', EMAIL), { code: 'AUTH_WEAK_PASSWORD', message: 'This password is too common' })
  try {
    assertPasswordAllowed('ada.lovelace', EMAIL)
  } catch (err) {
    t.ok(err instanceof ServiceError, 'a ServiceError (the HTTP layer maps it to 400)')
  }
  t.doesNotThrow(() => assertPasswordAllowed(PASSWORD, EMAIL, null))
})

t.test('cost per check (printed, not asserted)', async (t) => {
  // The longest inputs the schema lets through, and the cases that do the most work: they pass
  // every rule, so every comparison runs.
  const inputs = [PASSWORD, 'x'.repeat(PASSWORD_MAX_LENGTH), '🔑'.repeat(PASSWORD_MAX_LENGTH), 'Password', `${'a'.repeat(243)}@example.com`]
  const calls = 20_000
  let refused = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) if (checkPasswordPolicy(inputs[i % inputs.length], EMAIL, 'A display name')) refused++
  const microseconds = Number(process.hrtime.bigint() - start) / 1000 / calls
  t.equal(refused, calls / inputs.length, 'only the common one of the inputs is refused')
  t.comment(`checkPasswordPolicy: ${microseconds.toFixed(2)} µs per call on average over ${calls} calls (inputs up to ${PASSWORD_MAX_LENGTH} code points)`)
})
