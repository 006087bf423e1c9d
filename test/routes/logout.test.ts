import t from 'tap'
import {
  API_PREFIX,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  loginUser,
  me,
  refresh,
  registerUser,
  signWith
} from '../helper.js'

const { app, privateKeyPem } = await buildTestApp(t)
const url = `${API_PREFIX}/logout`

function logout(accessToken: string | undefined, payload?: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url,
    headers: { ...(accessToken ? bearer(accessToken) : {}), ...headers },
    ...(payload === undefined ? {} : { payload: payload as string })
  })
}

/** A user with two sessions (two devices): `first` and `second`. */
async function userWithTwoSessions() {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  return { first, second, userId: first.user.id }
}

/** The same refresh token with some claims changed, signed with the app's own key. */
/** The same refresh token signed again by the app's own key, with some claims or header fields changed. */
function resignedRefresh(refreshToken: string, claims: Record<string, unknown>, headerChanges: Record<string, unknown> = {}): string {
  const { header, payload } = decodeJwt(refreshToken)
  return signWith(privateKeyPem, { ...header, ...headerChanges }, { ...payload, ...claims })
}

t.test('§1 the Bearer access token is required', async (t) => {
  const { first, userId } = await userWithTwoSessions()

  const missing = await logout(undefined)
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.match(missing.json(), errorShape(401))

  const garbage = await logout('not-a-jwt')
  t.equal(garbage.statusCode, 401)
  t.equal(garbage.headers['www-authenticate'], 'Bearer error="invalid_token"')

  const refreshAsAccess = await logout(first.refresh_token)
  t.equal(refreshAsAccess.statusCode, 401, 'a refresh token is not an access token')

  const signature = first.access_token.slice(first.access_token.lastIndexOf('.') + 1)
  const tampered = first.access_token.slice(0, -signature.length) + [...signature].reverse().join('')
  t.equal((await logout(tampered)).statusCode, 401, 'tampered signature')

  const basic = await logout(undefined, undefined, { authorization: 'Basic dXNlcjpwYXNz' })
  t.equal(basic.statusCode, 401)
  t.equal(basic.headers['www-authenticate'], 'Bearer')

  t.equal(await countSessions(app, userId), 2, 'nothing was deleted')
})

t.test('§1 a second logout with the same access token is 401', async (t) => {
  const { first, userId } = await userWithTwoSessions()
  t.equal((await logout(first.access_token)).statusCode, 204)
  const again = await logout(first.access_token)
  t.equal(again.statusCode, 401)
  t.equal(again.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(await countSessions(app, userId), 1)
})

t.test('§2 no body, an empty JSON body and {} all end only the current session', async (t) => {
  const variants: Array<[string, unknown, Record<string, string>]> = [
    ['no body', undefined, {}],
    ['empty body with Content-Type: application/json', '', { 'content-type': 'application/json' }],
    ['empty body with a charset', '', { 'content-type': 'application/json; charset=utf-8' }],
    ['{}', {}, {}]
  ]
  for (const [name, payload, headers] of variants) {
    const { first, second, userId } = await userWithTwoSessions()
    const res = await logout(first.access_token, payload, headers)
    t.equal(res.statusCode, 204, name)
    t.equal(res.body, '', `${name}: empty body`)
    t.equal(await countSessions(app, userId), 1, `${name}: the other session stays`)
    t.equal((await me(app, first.access_token)).statusCode, 401, `${name}: its access token is dead`)
    t.equal((await refresh(app, first.refresh_token)).statusCode, 401, `${name}: its refresh token is dead`)
    t.equal((await me(app, second.access_token)).statusCode, 200, `${name}: the other device still works`)
  }
})

t.test('§3 refresh_token ends the session it belongs to', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  const res = await logout(first.access_token, { refresh_token: second.refresh_token })
  t.equal(res.statusCode, 204)
  t.equal(await countSessions(app, userId), 1)
  t.equal((await refresh(app, second.refresh_token)).statusCode, 401, "the other device's refresh token is dead")
  t.equal((await me(app, second.access_token)).statusCode, 401, "the other device's access token is dead")
  t.equal((await me(app, first.access_token)).statusCode, 200, 'the calling session stays')
})

t.test('§3 refresh_token of the current session ends it', async (t) => {
  const { first, userId } = await userWithTwoSessions()
  t.equal((await logout(first.access_token, { refresh_token: first.refresh_token })).statusCode, 204)
  t.equal(await countSessions(app, userId), 1)
  t.equal((await me(app, first.access_token)).statusCode, 401)
})

t.test('§3 an invalid refresh_token is 401 and deletes nothing', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  const cases: Record<string, string> = {
    malformed: 'abc.def',
    'badly signed': second.refresh_token.slice(0, second.refresh_token.lastIndexOf('.') + 1) + 'A'.repeat(86),
    'wrong typ (an access token)': second.access_token,
    'typ JWT': resignedRefresh(second.refresh_token, {}, { typ: 'JWT' }),
    expired: resignedRefresh(second.refresh_token, { exp: Math.floor(Date.now() / 1000) - 3600 })
  }
  t.equal(resignedRefresh(second.refresh_token, {}), second.refresh_token, 'the re-signer reproduces a genuine token exactly')
  for (const [name, token] of Object.entries(cases)) {
    const res = await logout(first.access_token, { refresh_token: token })
    t.equal(res.statusCode, 401, name)
    t.match(res.json(), errorShape(401), name)
    t.equal(res.headers['www-authenticate'], 'Bearer', `${name}: a Bearer challenge, but not "invalid_token" (the access token is fine)`)
  }
  t.equal(await countSessions(app, userId), 2)
})

t.test("§3 another user's refresh_token is 403 and deletes nothing", async (t) => {
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  const res = await logout(alice.access_token, { refresh_token: bob.refresh_token })
  t.equal(res.statusCode, 403)
  t.match(res.json(), errorShape(403))
  t.equal(await countSessions(app, bob.user.id), 1)
  t.equal(await countSessions(app, alice.user.id), 1)
  t.equal((await me(app, bob.access_token)).statusCode, 200)
})

t.test('§3 a genuine refresh_token whose session is already gone is 204', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  t.equal((await logout(second.access_token)).statusCode, 204)
  const res = await logout(first.access_token, { refresh_token: second.refresh_token })
  t.equal(res.statusCode, 204)
  t.equal(await countSessions(app, userId), 1)
})

t.test('§4 all_devices ends every session of the user, and only of that user', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  const bystander = await registerUser(app)
  t.equal((await logout(first.access_token, { all_devices: true })).statusCode, 204)
  t.equal(await countSessions(app, userId), 0)
  t.equal((await me(app, first.access_token)).statusCode, 401)
  t.equal((await me(app, second.access_token)).statusCode, 401)
  t.equal((await refresh(app, second.refresh_token)).statusCode, 401)
  t.equal((await me(app, bystander.access_token)).statusCode, 200)
})

t.test('§4 all_devices with keep_current keeps the calling session', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  t.equal((await logout(first.access_token, { all_devices: true, keep_current: true })).statusCode, 204)
  t.equal(await countSessions(app, userId), 1)
  t.equal((await me(app, first.access_token)).statusCode, 200)
  t.equal((await me(app, second.access_token)).statusCode, 401)
})

t.test('§4 all_devices: false is the same as no option', async (t) => {
  const { first, userId } = await userWithTwoSessions()
  t.equal((await logout(first.access_token, { all_devices: false })).statusCode, 204)
  t.equal(await countSessions(app, userId), 1)
})

t.test('§6 bad bodies are 400 and delete nothing', async (t) => {
  const { first, userId } = await userWithTwoSessions()
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, unknown, Record<string, string>]> = [
    ['unknown property', { everything: true }, {}],
    ['JSON null', 'null', json],
    ['JSON array', '[]', json],
    ['JSON string', '"x"', json],
    ['JSON number', '1', json],
    ['refresh_token not a string', { refresh_token: 42 }, {}],
    ['all_devices as a string', { all_devices: 'true' }, {}],
    ['keep_current as a number', { all_devices: true, keep_current: 1 }, {}],
    ['refresh_token with all_devices', { refresh_token: first.refresh_token, all_devices: true }, {}],
    ['keep_current without all_devices', { keep_current: true }, {}],
    ['keep_current with all_devices: false', { all_devices: false, keep_current: false }, {}],
    ['malformed JSON', '{"all_devices": tru', json]
  ]
  for (const [name, payload, headers] of cases) {
    const res = await logout(first.access_token, payload, headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
  }
  t.equal(await countSessions(app, userId), 2)
})

t.test('a body that is not JSON is 415, an oversized one 413', async (t) => {
  const { first, userId } = await userWithTwoSessions()
  const form = await logout(first.access_token, 'all_devices=true', { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(form.statusCode, 415)
  t.match(form.json(), errorShape(415))
  const text = await logout(first.access_token, '{}', { 'content-type': 'text/plain' })
  t.equal(text.statusCode, 415, 'text/plain is not JSON either')
  const huge = await logout(first.access_token, JSON.stringify({ refresh_token: 'x'.repeat(1_100_000) }), json())
  t.equal(huge.statusCode, 413)
  t.match(huge.json(), errorShape(413))
  t.equal(await countSessions(app, userId), 2)
})

t.test('§5 after logout the refresh token fails at /refresh with 401', async (t) => {
  const user = await registerUser(app)
  t.equal((await logout(user.access_token)).statusCode, 204)
  const res = await refresh(app, user.refresh_token)
  t.equal(res.statusCode, 401)
  t.match(res.json(), errorShape(401))
})

function json(): Record<string, string> {
  return { 'content-type': 'application/json' }
}

t.test('§1 a revoked token is 401 whatever the body, and deletes nothing', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  t.equal((await logout(first.access_token)).statusCode, 204)
  const bodies: unknown[] = [undefined, {}, { all_devices: true }, { all_devices: 'true' }, { refresh_token: second.refresh_token }, { nope: 1 }]
  for (const body of bodies) {
    const res = await logout(first.access_token, body as never)
    t.equal(res.statusCode, 401, `body ${JSON.stringify(body)}`)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  }
  t.equal(await countSessions(app, userId), 1, 'the other session is untouched')
})
