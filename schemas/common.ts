import { Type, type Static, type TSchema } from '@sinclair/typebox'

// Small shared pieces the request and response schemas are built from.

export const UuidSchema = Type.String({ format: 'uuid' })
// Dates leave the service as ISO 8601 strings; handlers return Date objects.
export const TimestampSchema = Type.Unsafe<Date>(Type.String({ format: 'date-time' }))
export const EmailSchema = Type.String({ format: 'email', maxLength: 254 })

/**
 * Text that is stored: PostgreSQL `text` holds neither U+0000 nor a lone UTF-16 surrogate (JSON
 * can carry both), so they are a 400, not a 500. Ajv compiles patterns with the `u` flag, under
 * which a surrogate pair is one code point outside the class.
 */
export const StoredTextSchema = (options: { minLength?: number, maxLength: number }) =>
  Type.String({ ...options, pattern: '^[^\\u0000\\ud800-\\udfff]*$' })

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/** Fastify's error shape (docs/api.md, "Conventions": every error body), with our optional `code`. */
export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    code: Type.Optional(Type.String())
  },
  { $id: 'ErrorResponse', title: 'ErrorResponse' }
)
export type ErrorResponse = Static<typeof ErrorResponseSchema>

/** A reference to the shared error schema, for the response map of every route. */
export const ErrorRef = Type.Ref(ErrorResponseSchema)

/**
 * An empty response (204, or RFC 7009's empty 200). `type: 'null'` is how @fastify/swagger is
 * told there is no body: the OpenAPI response then has no `content` (a 204 must not declare one).
 * Handlers send no payload, so Fastify never runs the serializer and the body stays empty.
 */
export const NoContentSchema = Type.Unsafe<undefined>({ type: 'null', description: 'Empty body' })

export const HealthSchema = Type.Object({ status: Type.String() })
