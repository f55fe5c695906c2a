// EidError: a failed eid call, decoded from the Google rich error model.
//
// The server answers every failure with a canonical status code plus, in the
// `grpc-status-details-bin` trailer, a serialized google.rpc.Status whose
// details carry an ErrorInfo (the stable reason), for invalid input a
// BadRequest (the offending fields) and, when waiting helps, a RetryInfo.
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { ErrorReason, errorReasonFromJSON } from "./gen/eid/errors/v1/error_reason";
import { BadRequest, ErrorInfo, RetryInfo } from "./gen/google/rpc/error_details";
import { Status as RpcStatus } from "./gen/google/rpc/status";

export const STATUS_DETAILS_KEY = "grpc-status-details-bin";
/** ErrorInfo.domain of eid's own errors. */
export const ERROR_DOMAIN = "eid.v1";
const TYPE_PREFIX = "type.googleapis.com/";

/** One invalid field of a request (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** The field's path in the request, e.g. `personal_id` or `password.personal_id`. */
  field: string;
  /** Why, for humans; may change. */
  description: string;
  /** The field's own ErrorReason name, e.g. `PERSONAL_ID_INVALID`. */
  reason: string;
}

/** A call to eid failed. Branch on `code` for the broad class of failure and
 * on `reason` / `reasonEnum` for the exact cause; `message` is for humans. */
export class EidError extends Error {
  override readonly name = "EidError";
  /** The gRPC status code, e.g. `status.INVALID_ARGUMENT` (3). */
  readonly code: Status;
  /** The ErrorInfo reason, e.g. `"SHARE_ALREADY_REDEEMED"`; undefined when the
   * failure did not come from eid itself (no server reached, deadline passed). */
  readonly reason: string | undefined;
  /** `reason` as the enum of protos/eid/errors/v1/error_reason.proto:
   * ERROR_REASON_UNSPECIFIED without a reason or for another domain's (a
   * proxy's: the same word, its own meaning), UNRECOGNIZED for a reason newer
   * than these stubs (then act on `code` alone). */
  readonly reasonEnum: ErrorReason;
  /** ErrorInfo.domain: `"eid.v1"` for eid's own errors. */
  readonly domain: string | undefined;
  /** ErrorInfo.metadata, e.g. `incident` on INTERNAL. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly fieldViolations: readonly FieldViolation[];
  /** RetryInfo: how long the server asks to wait before trying again. */
  readonly retryDelayMs: number | undefined;

  constructor(
    code: Status,
    message: string,
    details: {
      reason?: string;
      domain?: string;
      metadata?: Record<string, string>;
      fieldViolations?: FieldViolation[];
      retryDelayMs?: number;
      /** Why the call ended, when the client ended it (an AbortSignal's reason). */
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.reason = details.reason;
    const ours = details.domain === undefined || details.domain === ERROR_DOMAIN;
    this.reasonEnum =
      details.reason && ours ? errorReasonFromJSON(details.reason) : ErrorReason.ERROR_REASON_UNSPECIFIED;
    this.domain = details.domain;
    this.metadata = details.metadata ?? {};
    this.fieldViolations = details.fieldViolations ?? [];
    this.retryDelayMs = details.retryDelayMs;
  }

  /** The status code's name, e.g. `"FAILED_PRECONDITION"`. */
  get codeName(): string {
    return Status[this.code] ?? String(this.code);
  }

  override toString(): string {
    const head = this.reason === undefined ? this.codeName : `${this.codeName} ${this.reason}`;
    return `${head}: ${this.message}`;
  }
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number";
}

/** The google.rpc.Status in a failed call's trailers, if there and valid. */
export function statusFromTrailers(metadata: Metadata | undefined): RpcStatus | undefined {
  const value = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(value instanceof Uint8Array)) return undefined;
  try {
    return RpcStatus.decode(value);
  } catch {
    return undefined; // a garbled trailer must not hide the status code
  }
}

/** Converts what a grpc-js call failed with into an EidError (other errors
 * are returned unchanged: they are bugs, not call failures).
 *
 * The trailer is read as the Python and Java SDKs read it: its details count
 * only when its code is the call's (gRPC's rule; one that contradicts the
 * status line is another failure's, a proxy's); the message is the status
 * line's, the trailer's only when the line has none (a proxy may rewrite
 * grpc-message; that does not make the details any less the call's). The
 * first ErrorInfo with a reason gives reason, domain and metadata; every
 * other is ignored, one without a reason too (AIP-193 requires one).
 * BadRequest violations add up; the last readable RetryInfo gives the delay. */
export function toEidError(e: unknown): unknown {
  if (e instanceof EidError || !isServiceError(e)) return e;
  let rich = statusFromTrailers(e.metadata);
  // A trailer that contradicts the status line is not this failure's: trust the line.
  if (rich !== undefined && rich.code !== e.code) rich = undefined;
  const message = e.details || rich?.message || Status[e.code] || "call failed";
  const details: ConstructorParameters<typeof EidError>[2] = {};
  for (const any of rich?.details ?? []) {
    try {
      switch (any.typeUrl.slice(TYPE_PREFIX.length)) {
        case "google.rpc.ErrorInfo": {
          // The first ErrorInfo with a reason is eid's: a proxy's appended
          // one must not replace it, nor a reasonless one add to it.
          if (details.reason !== undefined) break;
          const info = ErrorInfo.decode(any.value);
          if (!info.reason) break;
          details.reason = info.reason;
          details.domain = info.domain || undefined;
          details.metadata = info.metadata;
          break;
        }
        case "google.rpc.BadRequest":
          details.fieldViolations = [
            ...(details.fieldViolations ?? []),
            ...BadRequest.decode(any.value).fieldViolations.map((v) => ({
              field: v.field,
              description: v.description,
              reason: v.reason,
            })),
          ];
          break;
        case "google.rpc.RetryInfo": {
          const delay = RetryInfo.decode(any.value).retryDelay;
          if (delay) details.retryDelayMs = delay.seconds * 1000 + delay.nanos / 1e6;
          break;
        }
      }
    } catch {
      // An undecodable detail is skipped; the status code still stands.
    }
  }
  return new EidError(e.code, message, details);
}
