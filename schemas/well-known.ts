import { Type } from '@sinclair/typebox'

export const JwkSchema = Type.Object({
  kty: Type.String(),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.String(),
  crv: Type.Optional(Type.String()),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String())
})

// Only these members are ever serialised: the response schema is the guard against leaking
// private members (d) even if a key object carried them.
export const JwksSchema = Type.Object({ keys: Type.Array(JwkSchema) }, { title: 'Jwks' })
