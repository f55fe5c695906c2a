// When and how long the client waits before sending a failed call again: the
// same policy as the Python SDK (clients/python/eid_client/retry.py).
//
// A call is sent again unchanged, so a write keeps the request_id of its first
// attempt and the server answers a repeat with the first answer: no retry can
// register, redeem, lock or sign in twice. A call without a request_id is
// retried only when it only reads (List*, Get*).
import { status as Status } from "@grpc/grpc-js";
import { EidError } from "./errors";

/** Which failed calls are sent again, how often and after how long.
 *
 * Retried: UNAVAILABLE and ABORTED (except APPROVAL_PENDING, an answer), and
 * RESOURCE_EXHAUSTED for the party's rate limits when the server sent a
 * RetryInfo of at most `maxServerDelayMs`. The other RESOURCE_EXHAUSTED
 * reasons (wrong passwords or codes) throttle people: retrying them would
 * hide what an integrator must see. Before retry n the client sleeps a random
 * time in [0, min(maxBackoffMs, initialBackoffMs * multiplier^(n-1))] ("full
 * jitter", so clients that failed together do not come back together), and
 * at least the server's RetryInfo delay; no retry is started that could not
 * finish before the call's deadline, and one that runs out of it throws the
 * error it was retrying, not DEADLINE_EXCEEDED. */
export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  maxServerDelayMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  maxAttempts: 5,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  multiplier: 2,
  maxServerDelayMs: 5000,
};

/** Every call is sent once. */
export const NO_RETRY: Readonly<RetryPolicy> = { ...DEFAULT_RETRY, maxAttempts: 1 };

const RATE_LIMIT_REASONS = new Set(["PARTY_RATE_LIMITED", "PARTY_CITIZEN_RATE_LIMITED"]);
const NOT_RETRIED_REASONS = new Set(["APPROVAL_PENDING"]);
// RPCs whose requests carry no request_id and only read.
// Kept equal to the Python client's READ_REQUESTS (a test compares them).
export const READ_RPCS: ReadonlySet<string> = new Set([
  "ListAccessHistory",
  "ListApprovalRequests",
  "ListDependants",
  "ListLinkedDocuments",
  "ListShares",
  "ListSessions",
  "GetVerificationKeys",
  "GetVerifyModeLocks",
  "GetStatusWebhook",
]);

/** Whether sending this request twice has the effect of sending it once. */
export function isIdempotent(rpc: string, request: object): boolean {
  if ("requestId" in request) return Boolean(request.requestId);
  return READ_RPCS.has(rpc);
}

function retryable(error: EidError, policy: RetryPolicy): boolean {
  if (error.reason !== undefined && NOT_RETRIED_REASONS.has(error.reason)) return false;
  if (error.code === Status.UNAVAILABLE || error.code === Status.ABORTED) return true;
  return (
    error.code === Status.RESOURCE_EXHAUSTED &&
    error.reason !== undefined &&
    RATE_LIMIT_REASONS.has(error.reason) &&
    error.retryDelayMs !== undefined
  );
}

/** Milliseconds to sleep before retry number `retry` (1-based), or undefined:
 * give up and throw `error`. `leftMs` is what remains of the call's deadline
 * once the retry's own time is set aside (the client counts it as long as the
 * attempt before it took): a retry that could not finish is not started. */
export function pauseBefore(
  retry: number,
  error: EidError,
  policy: RetryPolicy,
  leftMs: number,
  random: () => number = Math.random,
): number | undefined {
  if (retry >= policy.maxAttempts || !retryable(error, policy)) return undefined;
  const cap = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** Math.min(retry - 1, 64));
  let pause = random() * cap;
  if (error.retryDelayMs !== undefined) {
    if (error.retryDelayMs > policy.maxServerDelayMs) return undefined;
    pause = Math.max(pause, error.retryDelayMs);
  }
  // A retry that could not finish before the deadline could only fail, with
  // DEADLINE_EXCEEDED in place of the error that says why.
  return pause < leftMs ? pause : undefined;
}
