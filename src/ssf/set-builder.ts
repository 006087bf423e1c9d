// Security Event Tokens (RFC 8417) as SSF 1.0 and CAEP 1.0 shape them (docs/ssf.md, "SETs"):
// one event per SET, `sub_id` at the top, no `sub` and no `exp`. A SET is a pure function of its
// event and stream (`iat` is the event's time), so a redelivery carries the same bytes (EdDSA).
import { createSigner } from 'fast-jwt'
import type { KeyRing } from '../auth/keys.js'
import type { SecurityEventType } from '../repositories/security-events.js'

export const SET_TYP = 'secevent+jwt'

/** The CAEP event types this transmitter emits, by their short names in security_events. */
export const EVENT_TYPE_URIS: Readonly<Record<SecurityEventType, string>> = {
  'session-revoked': 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  'credential-change': 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
}
export const VERIFICATION_EVENT_URI = 'https://schemas.openid.net/secevent/ssf/event-type/verification'

/** `events_supported` of every stream. */
export const EVENTS_SUPPORTED: readonly string[] = Object.values(EVENT_TYPE_URIS)

/** The short types of the requested URIs this transmitter supports (`events_delivered`). */
export function deliveredTypes(requested: readonly string[]): SecurityEventType[] {
  return (Object.keys(EVENT_TYPE_URIS) as SecurityEventType[]).filter((type) => requested.includes(EVENT_TYPE_URIS[type]))
}

/** A row of the event log, as the streams read it. */
export interface LoggedEvent {
  /** security_events.id, as text. */
  readonly id: string
  /** The writing transaction (xid8, as text): the SET's `txn`. */
  readonly txid: string
  readonly occurredAt: Date
  readonly type: SecurityEventType
  readonly userId: string
  readonly sessionId: string | null
  readonly initiatingEntity: string
  readonly reason: string
  readonly detail: Record<string, unknown> | null
}

export interface PendingVerification {
  /** ssf_verifications.id, as text. */
  readonly id: string
  readonly state: string | null
  readonly requestedAt: Date
}

/** Where a SET goes: the stream's id (in the jti) and its audience. */
export interface StreamAddress {
  readonly id: string
  readonly aud: string
}

// jti: unique per SET (event and stream), and parsed back when a receiver acknowledges it.
export const eventJti = (eventId: string, streamId: string): string => `${eventId}.${streamId}`
export const verificationJti = (verificationId: string, streamId: string): string => `v${verificationId}.${streamId}`

const JTI = /^(v?)([1-9][0-9]{0,17})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/** The event or verification a jti of this stream names; undefined for anything else. */
export function parseJti(jti: string, streamId: string): { kind: 'event' | 'verification', id: string } | undefined {
  const match = JTI.exec(jti)
  if (!match || match[3] !== streamId) return undefined
  return { kind: match[1] === 'v' ? 'verification' : 'event', id: match[2] }
}

const seconds = (date: Date): number => Math.floor(date.getTime() / 1000)

export function createSetBuilder(keys: KeyRing, issuer: string) {
  const sign = createSigner({
    key: keys.signingKey,
    algorithm: keys.algorithm,
    kid: keys.signingKid,
    header: { alg: keys.algorithm, typ: SET_TYP }
  })

  function eventSet(event: LoggedEvent, stream: StreamAddress): string {
    const user = { format: 'iss_sub', iss: issuer, sub: event.userId }
    const subId = event.sessionId === null
      ? user
      : { format: 'complex', user, session: { format: 'opaque', id: event.sessionId } }
    const common = {
      event_timestamp: seconds(event.occurredAt),
      initiating_entity: event.initiatingEntity,
      reason_admin: { en: event.reason }
    }
    const body = event.type === 'credential-change'
      ? { credential_type: event.detail?.credential_type ?? 'password', change_type: event.detail?.change_type ?? 'update', ...common }
      : common
    return sign({
      iss: issuer,
      jti: eventJti(event.id, stream.id),
      iat: seconds(event.occurredAt),
      aud: stream.aud,
      txn: event.txid,
      sub_id: subId,
      events: { [EVENT_TYPE_URIS[event.type]]: body }
    })
  }

  function verificationSet(verification: PendingVerification, stream: StreamAddress): string {
    return sign({
      iss: issuer,
      jti: verificationJti(verification.id, stream.id),
      iat: seconds(verification.requestedAt),
      aud: stream.aud,
      sub_id: { format: 'opaque', id: stream.id },
      events: { [VERIFICATION_EVENT_URI]: verification.state === null ? {} : { state: verification.state } }
    })
  }

  return { eventSet, verificationSet }
}

export type SetBuilder = ReturnType<typeof createSetBuilder>
