import { Type } from '@sinclair/typebox'
import { Nullable, StoredTextSchema, TimestampSchema } from './common.js'

// The Shared Signals endpoints (docs/ssf.md): stream configuration and status (SSF 1.0 §8),
// verification, and RFC 8936 poll. Unknown members are a 400 like everywhere else.

const POLL = 'urn:ietf:rfc:8936'
const PUSH = 'urn:ietf:rfc:8935'

// Like the admin ids, a stream id that is not a UUID names nothing: 404, not 400.
const StreamIdSchema = Type.String({ maxLength: 64, description: 'The stream id (a UUID)' })
const EventTypeSchema = StoredTextSchema({ minLength: 1, maxLength: 512 })
const EventsRequestedSchema = Type.Array(EventTypeSchema, {
  maxItems: 64,
  description: 'Event type URIs; those this transmitter does not support are kept but not delivered'
})
const DescriptionSchema = Nullable(StoredTextSchema({ maxLength: 1024 }))

const DeliveryRequestSchema = Type.Object(
  {
    method: Type.Union([Type.Literal(POLL), Type.Literal(PUSH)], { description: `${POLL} (poll, RFC 8936) or ${PUSH} (push, RFC 8935)` }),
    // Push: the receiver's URL, at an origin the operator allows. Poll: supplied by the transmitter (may be echoed back).
    endpoint_url: Type.Optional(StoredTextSchema({ minLength: 1, maxLength: 2048 }))
  },
  { additionalProperties: false }
)

/** Members the transmitter supplies; a PATCH or PUT may carry them back, and they must match. */
const TransmitterSuppliedProperties = {
  iss: Type.Optional(Type.String({ maxLength: 2048 })),
  aud: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Array(Type.String({ maxLength: 256 }), { maxItems: 16 })])),
  events_supported: Type.Optional(Type.Array(Type.String({ maxLength: 512 }), { maxItems: 64 })),
  events_delivered: Type.Optional(Type.Array(Type.String({ maxLength: 512 }), { maxItems: 64, description: 'Ignored: it follows from events_requested' })),
  inactivity_timeout: Type.Optional(Type.Integer())
}

export const StreamCreateSchema = Type.Object(
  {
    delivery: DeliveryRequestSchema,
    events_requested: Type.Optional(EventsRequestedSchema),
    description: Type.Optional(DescriptionSchema)
  },
  { title: 'SsfStreamCreate', additionalProperties: false }
)

export const StreamUpdateSchema = Type.Object(
  {
    stream_id: StreamIdSchema,
    delivery: Type.Optional(DeliveryRequestSchema),
    events_requested: Type.Optional(EventsRequestedSchema),
    description: Type.Optional(DescriptionSchema),
    ...TransmitterSuppliedProperties
  },
  { title: 'SsfStreamUpdate', additionalProperties: false, description: 'Members left out are not changed' }
)

export const StreamReplaceSchema = Type.Object(
  {
    stream_id: StreamIdSchema,
    delivery: DeliveryRequestSchema,
    events_requested: Type.Optional(EventsRequestedSchema),
    description: Type.Optional(DescriptionSchema),
    ...TransmitterSuppliedProperties
  },
  { title: 'SsfStreamReplace', additionalProperties: false, description: 'Receiver-supplied members left out are removed' }
)

export const StreamQuerySchema = Type.Object(
  { stream_id: Type.Optional(StreamIdSchema) },
  { additionalProperties: false }
)
export const StreamIdQuerySchema = Type.Object({ stream_id: StreamIdSchema }, { additionalProperties: false })
export const PollParamsSchema = Type.Object({ stream_id: StreamIdSchema }, { additionalProperties: false })

export const StreamConfigSchema = Type.Object(
  {
    stream_id: Type.String(),
    iss: Type.String(),
    aud: Type.String({ description: 'The owning client\'s id' }),
    delivery: Type.Object({ method: Type.String(), endpoint_url: Type.String() }, { additionalProperties: false }),
    events_supported: Type.Array(Type.String()),
    events_requested: Type.Array(Type.String()),
    events_delivered: Type.Array(Type.String()),
    description: Type.Optional(Type.String()),
    inactivity_timeout: Type.Optional(Type.Integer({ description: 'Poll streams: seconds without a poll before the stream is deleted' }))
  },
  { $id: 'SsfStream', title: 'SsfStream', additionalProperties: false }
)
export const StreamConfigRef = Type.Ref(StreamConfigSchema)

const StatusValue = Type.Union([Type.Literal('enabled'), Type.Literal('paused'), Type.Literal('disabled')])

export const StreamStatusSchema = Type.Object(
  {
    stream_id: Type.String(),
    status: StatusValue,
    reason: Type.Optional(Type.String()),
    last_polled_at: Type.Optional(TimestampSchema),
    last_delivered_at: Type.Optional(TimestampSchema),
    delivery_attempts: Type.Optional(Type.Integer({ description: 'Push: failed attempts at the SET at the head of the stream' })),
    next_attempt_at: Type.Optional(TimestampSchema),
    last_error: Type.Optional(Type.String())
  },
  { title: 'SsfStreamStatus', additionalProperties: false }
)

export const StatusUpdateSchema = Type.Object(
  {
    stream_id: StreamIdSchema,
    status: StatusValue,
    reason: Type.Optional(StoredTextSchema({ maxLength: 1024 }))
  },
  { title: 'SsfStatusUpdate', additionalProperties: false }
)

export const VerificationRequestSchema = Type.Object(
  {
    stream_id: StreamIdSchema,
    // Echoed back in the verification event.
    state: Type.Optional(StoredTextSchema({ maxLength: 1024 }))
  },
  { title: 'SsfVerificationRequest', additionalProperties: false }
)

const SetErrorSchema = Type.Object(
  { err: Type.String({ maxLength: 128 }), description: Type.Optional(Type.String({ maxLength: 2048 })) },
  { additionalProperties: false }
)

export const PollRequestSchema = Type.Object(
  {
    maxEvents: Type.Optional(Type.Integer({ minimum: 0, description: 'At most this many SETs (at most 1000; default 100); 0: acknowledge only' })),
    returnImmediately: Type.Optional(Type.Boolean({ description: 'false (the default): a long poll, answered as soon as SETs are there or empty after SSF_POLL_TIMEOUT' })),
    ack: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 1000, description: 'jti of SETs received: never delivered again' })),
    // An object of jti to error (RFC 8936 §2.4): additionalProperties rather than a record, which OpenAPI 3.0 cannot say.
    setErrs: Type.Optional(Type.Unsafe<Record<string, { err: string, description?: string }>>({
      type: 'object',
      maxProperties: 1000,
      additionalProperties: SetErrorSchema,
      description: 'jti to { err, description }: SETs the receiver could not use; logged and not delivered again'
    }))
  },
  { title: 'SsfPollRequest', additionalProperties: false }
)

export const PollResponseSchema = Type.Object(
  {
    sets: Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, description: 'jti to SET' }),
    moreAvailable: Type.Boolean()
  },
  { title: 'SsfPollResponse', additionalProperties: false }
)

export const SsfConfigurationSchema = Type.Object(
  {
    spec_version: Type.String(),
    issuer: Type.String(),
    jwks_uri: Type.String(),
    delivery_methods_supported: Type.Array(Type.String()),
    configuration_endpoint: Type.String(),
    status_endpoint: Type.String(),
    verification_endpoint: Type.String(),
    authorization_schemes: Type.Array(Type.Object({ spec_urn: Type.String() })),
    default_subjects: Type.String()
  },
  { title: 'SsfConfiguration', additionalProperties: false }
)
