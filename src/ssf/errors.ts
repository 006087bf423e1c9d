import createError from '@fastify/error'

// What the SSF endpoints refuse (docs/ssf.md, "Errors"), in the service's error shape.
export const StreamNotFoundError = createError('AUTH_STREAM_NOT_FOUND', 'Stream not found', 404)
export const InvalidStreamRequestError = createError('AUTH_INVALID_STREAM_REQUEST', '%s', 400)
export const TooManyStreamsError = createError('AUTH_TOO_MANY_STREAMS', 'This client already has as many streams as allowed (SSF_MAX_STREAMS_PER_CLIENT)', 409)
export const TooManyVerificationsError = createError('AUTH_TOO_MANY_VERIFICATIONS', 'Too many verification events are waiting on this stream', 429)
