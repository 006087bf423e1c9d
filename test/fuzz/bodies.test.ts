// Property-based fuzzing of the JSON request bodies of every POST route (register, login, refresh,
// logout, revoke, password): random JSON documents, objects with the right keys and values of the
// wrong types, huge strings (under the 1 MiB limit), every kind of Unicode, and prototype-pollution
// keys. Properties: (a) never a 5xx, nor a stack trace, SQL, a token or a password in an error
// body; (b) every error body has the shape of docs/api.md, "Conventions"; (c) a 4xx changes nothing in the database
// (support.ts, dbState: auth_events, the audit trail, is deliberately not compared).
import fc from 'fast-check'
import t from 'tap'
import { PASSWORD, bearer, type TokenPairBody } from '../helper.js'
import {
  JSON_TYPE,
  anyJsonText,
  anyString,
  assertPrototypesClean,
  b64url,
  base64urlString,
  emailLike,
  fuzzFixture,
  hugeString,
  regression,
  jsonValue,
  markedSecret,
  objectWithKeys,
  params,
  plausibleObject,
  parsed,
  pollutedBody,
  probe,
  secretsOf,
  statusTally,
  url,
  weirdValue
} from './support.js'

const f = await fuzzFixture(t)
const { app } = f

function post(path: string, body: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: url(path), headers: { ...JSON_TYPE, ...headers }, payload: body })
}

/** Token-shaped strings that are not genuine tokens of this app. */
const jwtShaped = fc.oneof(
  fc.array(base64urlString(), { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
  fc.tuple(jsonValue, jsonValue, base64urlString(90)).map(([header, payload, signature]) => `${b64url(header)}.${b64url(payload)}.${signature}`),
  fc.tuple(fc.constantFrom(f.victim.pair.access_token), base64urlString(4)).map(([token, tail]) => `${token}.${tail}`)
)
/** A refresh_token / token value: never a genuine refresh token (the victim's access token is, on purpose). */
const tokenValue = fc.oneof(
  markedSecret,
  jwtShaped,
  anyString(100),
  fc.constant(f.victim.pair.access_token),
  hugeString(20_000),
  fc.string({ unit: 'binary', minLength: 8000, maxLength: 9000 })
)

/**
 * A request body of any kind for a route with these keys: all of them with plausible values (so
 * that many runs get past validation into the service), some of them with values of any type,
 * any JSON document at all, or prototype-pollution keys.
 */
function bodyFor(keys: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: plausibleObject(keys), weight: 3 },
    { arbitrary: objectWithKeys(keys), weight: 3 },
    { arbitrary: anyJsonText, weight: 2 },
    { arbitrary: pollutedBody(Object.keys(keys)), weight: 1 }
  )
}

const registerKeys = {
  email: emailLike(f),
  // Common passwords too: the policy's 400 (AUTH_WEAK_PASSWORD) must change nothing either.
  password: fc.oneof(markedSecret, anyString(300), fc.constant(PASSWORD), fc.constantFrom('password', '12345678', 'qwertyui')),
  display_name: fc.oneof(anyString(120), fc.constant(null))
}

t.test('POST /register: any body', async (t) => {
  await fc.assert(
    fc.asyncProperty(bodyFor(registerKeys), async (body) => {
      await probe(f, () => post('/register', body), { secrets: secretsOf(parsed(body)) })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('POST /register: a NUL character in display_name is a 400, not a 500', async (t) => {
  // PostgreSQL text cannot hold NUL (SQLSTATE 22021): the schema refuses it first.
  const nulName = fc.tuple(anyString(20), anyString(20)).map(([a, b]) => `${a}\u0000${b}`.slice(0, 100))
  const property = fc.asyncProperty(fc.emailAddress(), nulName, async (address, displayName) => {
    const email = `${address.split('@')[0]}@${f.domain}`
    await probe(f, () => post('/register', JSON.stringify({ email, password: PASSWORD, display_name: displayName })))
  })
  await regression(t, 'regression: display_name containing U+0000 is a 400, not a 500', property, params(5))
})

t.test('POST /login: any body', async (t) => {
  const keys = { email: emailLike(f), password: fc.oneof(markedSecret, anyString(300), fc.constant(PASSWORD)) }
  await fc.assert(
    fc.asyncProperty(bodyFor(keys), async (body) => {
      await probe(f, () => post('/login', body), { secrets: secretsOf(parsed(body)) })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('POST /refresh: any body; without a genuine refresh token nothing ever changes', async (t) => {
  await fc.assert(
    fc.asyncProperty(bodyFor({ refresh_token: tokenValue }), async (body) => {
      await probe(f, () => post('/refresh', body), { status: [400, 401, 413], secrets: secretsOf(parsed(body)), unchangedAlways: true })
    }),
    params(250)
  )
  t.pass(statusTally())
})

t.test('POST /revoke: any body is 200 or 400, and a token that is not genuine revokes nothing', async (t) => {
  const keys = { token: tokenValue, token_type_hint: fc.oneof(fc.constantFrom('refresh_token', 'access_token'), anyString(80)) }
  await fc.assert(
    fc.asyncProperty(bodyFor(keys), async (body) => {
      await probe(f, () => post('/revoke', body), { status: [200, 400, 413], secrets: secretsOf(parsed(body)), unchangedAlways: true })
    }),
    params(250)
  )
  t.pass(statusTally())
})

t.test('POST /logout: any body with a valid access token', async (t) => {
  // The caller is a user of its own: a valid body (`{}`, `all_devices`...) logs it out, and the
  // next run logs it in again.
  const caller = await f.newUser('logout-caller')
  let session: TokenPairBody = caller
  const keys = {
    refresh_token: fc.oneof(tokenValue, fc.constant(f.other.refresh_token), fc.constant(f.victim.second.refresh_token)),
    all_devices: fc.oneof(fc.boolean(), weirdValue),
    keep_current: fc.oneof(fc.boolean(), weirdValue)
  }
  const body = fc.oneof(
    { arbitrary: bodyFor(keys), weight: 6 },
    // The combinations docs/api.md, "POST /logout", allows, so that runs get past those checks.
    { arbitrary: plausibleObject({ refresh_token: keys.refresh_token }), weight: 2 },
    { arbitrary: plausibleObject({ all_devices: keys.all_devices }), weight: 1 },
    { arbitrary: plausibleObject({ all_devices: keys.all_devices, keep_current: keys.keep_current }), weight: 1 },
    { arbitrary: fc.constantFrom('', '{}', 'null', '[]', ' '), weight: 1 }
  )
  await fc.assert(
    fc.asyncProperty(body, async (text) => {
      const res = await probe(f, () => post('/logout', text, bearer(session.access_token)), {
        // 403: another user's refresh token; 204: a valid body (then nothing of anyone else may go).
        status: [204, 400, 401, 403, 413],
        challenge: 'bare', // the access token is fine: a 401 is about the body's refresh_token
        secrets: secretsOf(parsed(text))
      })
      if (res.statusCode === 204) session = await f.newSession(caller.user.email)
    }),
    params(250)
  )
  t.pass(statusTally())
})

t.test('POST /password: any body with a valid access token (never the right current password)', async (t) => {
  const keys = {
    current_password: fc.oneof(markedSecret, anyString(300)),
    new_password: fc.oneof(markedSecret, anyString(300), hugeString(50_000))
  }
  await fc.assert(
    fc.asyncProperty(bodyFor(keys), async (body) => {
      await probe(f, () => post('/password', body, bearer(f.victim.second.access_token)), {
        status: [400, 401, 413],
        challenge: 'bare',
        secrets: secretsOf(parsed(body))
      })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('prototype-pollution keys are a 400 on every route, and pollute nothing', async (t) => {
  const routes: Array<[string, string[], Record<string, string>]> = [
    ['/register', ['email', 'password', 'display_name'], {}],
    ['/login', ['email', 'password'], {}],
    ['/refresh', ['refresh_token'], {}],
    ['/revoke', ['token', 'token_type_hint'], {}],
    ['/logout', ['refresh_token', 'all_devices', 'keep_current'], bearer(f.victim.second.access_token)],
    ['/password', ['current_password', 'new_password'], bearer(f.victim.second.access_token)]
  ]
  const request = fc.constantFrom(...routes).chain(([path, keys, headers]) => pollutedBody(keys).map((body) => ({ path, body, headers })))
  await fc.assert(
    fc.asyncProperty(request, async ({ path, body, headers }) => {
      await probe(f, () => post(path, body, headers), { status: 400, challenge: 'bare' })
      assertPrototypesClean()
    }),
    params(200)
  )
  t.pass(statusTally())
})
