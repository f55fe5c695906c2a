// EidClient: every IdentityService RPC as a typed, promise-returning method
// (`eid.verify({...})`), with the caller's credentials in metadata, a deadline
// on every call, safe retries and failures thrown as EidError.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { type ChannelCredentials, type ChannelOptions, credentials, Metadata, status as Status } from "@grpc/grpc-js";
import {
  type DeepPartial,
  IdentityServiceClient,
  IdentityServiceDefinition,
  type MessageFns,
} from "./gen/eid/v1/identity_service";
import { EidError, toEidError } from "./errors";
import { DEFAULT_RETRY, isIdempotent, pauseBefore, type RetryPolicy } from "./retry";

export const DEFAULT_TARGET = "127.0.0.1:50051";
// Long enough for Argon2id on a busy server, short enough that a lost
// connection surfaces while a person is still looking at the screen.
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Who is calling: each is sent on every call when set. */
export interface Caller {
  /** A relying party's API key (`x-api-key`). */
  apiKey?: string;
  /** A signed-in citizen's access token (`authorization: Bearer`), from SignIn. */
  sessionToken?: string;
  /** A registration officer's key (`x-officer-key`). */
  officerKey?: string;
}

export interface EidClientOptions extends Caller {
  /** Default: insecure (local development). In production: credentials.createSsl(). */
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /** Every call's deadline, all its attempts together. */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Call through this generated client (and its channel) instead of opening one. */
  stub?: IdentityServiceClient;
}

export interface CallOptions extends Caller {
  /** This call's deadline instead of the client's (e.g. Verify waiting for an approval). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Extra metadata to send. */
  metadata?: Metadata;
  /** Aborting it ends the call: the attempt in flight is cancelled (the
   * server sees CANCELLED and stops), no retry is sent, and the call rejects
   * with EidError CANCELLED whose `cause` is the signal's reason. E.g. the
   * signal of the integrator's own HTTP request, or AbortSignal.timeout(ms). */
  signal?: AbortSignal;
}

type Methods = typeof IdentityServiceDefinition.methods;
export type RpcName = keyof Methods;
export type RequestOf<K extends RpcName> = ReturnType<Methods[K]["requestType"]["create"]>;
export type ResponseOf<K extends RpcName> = ReturnType<Methods[K]["responseType"]["decode"]>;

/** One method per RPC: `request` may leave out any field (proto3 defaults);
 * a missing request_id is filled with a fresh UUID, kept across retries. */
export type EidRpcs = {
  [K in RpcName]: (request?: DeepPartial<RequestOf<K>>, options?: CallOptions) => Promise<ResponseOf<K>>;
};

interface Settings extends Caller {
  timeoutMs: number;
  retry: RetryPolicy;
}

// The methods are added in the constructor, typed by this declaration.
export interface EidClient extends EidRpcs {}

export class EidClient {
  /** The generated grpc-js client on the same channel, for raw calls. */
  readonly stub: IdentityServiceClient;
  // A #private field: util.inspect, console.log and JSON.stringify of a
  // client would show a TypeScript-private one, API key and tokens included.
  readonly #settings: Settings;

  constructor(target: string = DEFAULT_TARGET, options: EidClientOptions = {}) {
    const { credentials: creds, channelOptions, timeoutMs, retry, stub, ...caller } = options;
    this.stub = stub ?? new IdentityServiceClient(target, creds ?? credentials.createInsecure(), channelOptions);
    this.#settings = { ...caller, timeoutMs: timeoutMs ?? DEFAULT_TIMEOUT_MS, retry: retry ?? DEFAULT_RETRY };
    for (const key of Object.keys(IdentityServiceDefinition.methods) as RpcName[]) {
      const method = IdentityServiceDefinition.methods[key];
      const rpc = (request?: object, options?: CallOptions) =>
        this.call(method.name, method.requestType as MessageFns<object>, method.responseType, request, options);
      Object.defineProperty(this, key, { value: rpc, enumerable: false });
    }
  }

  /** A client on the same channel and settings speaking as `caller` only,
   * e.g. the citizen SignIn returned: `eid.withCaller({ sessionToken })`. */
  withCaller(caller: Caller): EidClient {
    const { timeoutMs, retry } = this.#settings;
    return new EidClient(undefined, { ...caller, timeoutMs, retry, stub: this.stub });
  }

  /** Closes the channel (shared with the clients withCaller() made). */
  close(): void {
    this.stub.close();
  }

  private metadataFor(options: CallOptions): Metadata {
    const md = options.metadata?.clone() ?? new Metadata();
    const apiKey = options.apiKey ?? this.#settings.apiKey;
    const session = options.sessionToken ?? this.#settings.sessionToken;
    const officer = options.officerKey ?? this.#settings.officerKey;
    if (apiKey) md.set("x-api-key", apiKey);
    if (session) md.set("authorization", `Bearer ${session}`);
    if (officer) md.set("x-officer-key", officer);
    return md;
  }

  private async call<Req extends object, Res>(
    rpc: string,
    requestType: MessageFns<Req>,
    responseType: MessageFns<Res>,
    partial: object | undefined,
    options: CallOptions = {},
  ): Promise<Res> {
    const request = requestType.fromPartial((partial ?? {}) as DeepPartial<Req>);
    if ("requestId" in request && !request.requestId) request.requestId = randomUUID();
    const metadata = this.metadataFor(options);
    const deadline = Date.now() + (options.timeoutMs ?? this.#settings.timeoutMs);
    const policy = options.retry ?? this.#settings.retry;
    const idempotent = isIdempotent(rpc, request);
    const signal = options.signal;
    let retried: EidError | undefined; // the latest error sent again
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw cancelled(signal);
      const began = Date.now();
      try {
        return await new Promise<Res>((resolve, reject) => {
          const cancel = () => call.cancel();
          const call = this.stub.makeUnaryRequest(
            `/${IdentityServiceDefinition.fullName}/${rpc}`,
            (value: Req) => Buffer.from(requestType.encode(value).finish()),
            (bytes: Buffer) => responseType.decode(bytes),
            request,
            metadata,
            { deadline },
            (error, response) => {
              // A signal shared by many calls must not keep a listener per call.
              signal?.removeEventListener("abort", cancel);
              if (error || response === undefined) reject(error);
              else resolve(response);
            },
          );
          signal?.addEventListener("abort", cancel, { once: true });
        });
      } catch (e) {
        // Whatever the attempt ended with, the caller ended the call.
        if (signal?.aborted) throw cancelled(signal);
        const error = toEidError(e);
        if (!(error instanceof EidError) || !idempotent) throw error;
        const now = Date.now();
        // A retry that ran out of the deadline only went on from the error
        // before it (its time was a guess): that error says why the call failed.
        if (error.code === Status.DEADLINE_EXCEEDED && retried !== undefined && now >= deadline) throw retried;
        const pause = pauseBefore(attempt, error, policy, deadline - now - (now - began));
        if (pause === undefined) throw error;
        retried = error;
        try {
          await sleep(pause, undefined, { signal });
        } catch {
          throw cancelled(signal as AbortSignal); // only an abort ends the pause early
        }
      }
    }
  }
}

/** The error of a call the caller aborted: what grpc-js reports for a
 * cancelled call, whether it was in flight or pausing before a retry. */
function cancelled(signal: AbortSignal): EidError {
  return new EidError(Status.CANCELLED, "Cancelled on client", { cause: signal.reason });
}
