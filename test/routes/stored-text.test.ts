// Text the service stores must be text PostgreSQL can hold: a NUL or a lone UTF-16 surrogate
// (both valid in JSON) is a 400 that creates nothing, never a 500 from the database.
import t from 'tap'
import { API_PREFIX, PASSWORD, buildTestApp, errorShape, uniqueEmail } from '../helper.js'

t.test('display_name: NUL and lone surrogates are 400, any well-formed text is stored', async (t) => {
  const { app } = await buildTestApp(t)
  const register = (display_name: string) =>
    app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email: uniqueEmail(), password: PASSWORD, display_name } })

  for (const [name, value] of Object.entries({ 'lone low surrogates': '\udfff\udfff', 'a lone high surrogate': 'a\ud83d', 'a NUL': 'a\u0000b' })) {
    const res = await register(value)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400))
  }
  const stored = await register('Zoë 😀 李')
  t.equal(stored.statusCode, 201)
  t.equal(stored.json().user.display_name, 'Zoë 😀 李', 'a surrogate pair is one character, stored as sent')
})
