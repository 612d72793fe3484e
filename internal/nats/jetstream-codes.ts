// The JetStream API error codes the adapters act on, named once (the server's
// errors.json numbers them), and one predicate per meaning the callers need.
//
// A compare-and-set write (KV create, update with an expected revision, a
// publish with Nats-Expected-Last-Subject-Sequence) that lost its race comes
// back as 10071 "wrong last sequence"; on a replicated stream the leader
// answers 10164 instead while another write to the same subject is still
// being replicated, because it cannot yet say what the last sequence is.
// Both mean "someone else wrote first: re-read and decide again", so both are
// one write conflict here, and only here.

import { JetStreamApiError } from "@nats-io/jetstream";
import { PermissionViolationError } from "@nats-io/transport-node";

export const JetStreamApiCode = {
  ConsumerNotFound: 10014,
  NoMessageFound: 10037,
  StreamNameInUse: 10058,
  StreamNotFound: 10059,
  StreamWrongLastSequence: 10071,
  /** Insufficient resources: more replicas asked for than the cluster has servers (or storage). */
  InsufficientResources: 10023,
  /** "replicas > 1 not supported in non-clustered mode". */
  ReplicasNotSupported: 10074,
  /** "duplicate message id is in process": the same Nats-Msg-Id is being stored right now (replicated streams). */
  DuplicateInProcess: 10158,
  StreamWrongLastSequenceUnknown: 10164,
} as const;
export type JetStreamApiCode = (typeof JetStreamApiCode)[keyof typeof JetStreamApiCode];

export function isApiError(err: unknown, code: JetStreamApiCode): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** The write named a revision (or absence) the key no longer has: another writer got there first. */
export function isWriteConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCode.StreamWrongLastSequence || err.code === JetStreamApiCode.StreamWrongLastSequenceUnknown)
  );
}

/**
 * The server refused the subject to this user (deploy/nats/accounts.conf).
 * nats.js wraps it in the failed request's error, as the cause.
 */
export function isPermissionViolation(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof PermissionViolationError) return true;
  }
  return false;
}
