// EidClient against a hostile or broken server (or a proxy in front of it):
// damaged, contradictory or absurd error details must still give an EidError
// with what could be read, never another exception, a long sleep or a retry
// that could act twice; and the caller's secrets stay out of what is printed.
// Run with client.test.js: node --test dist/test/client.test.js dist/test/hostile.test.js
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { inspect } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { DEFAULT_RETRY, EidClient, EidError, ErrorReason, NO_RETRY } from "../src";
import { BadRequest, ErrorInfo, RetryInfo } from "../src/gen/google/rpc/error_details";
import { Status } from "../src/gen/google/rpc/status";
import { IdentityServiceDefinition, IdentityServiceService } from "../src/gen/eid/v1/identity_service";

type Handler = (call: ServerUnaryCall<any, any>, callback: sendUnaryData<any>) => void;
type Any = { typeUrl: string; value: Uint8Array };
const seen: { rpc: string; requestId?: string; at: number }[] = [];
let script: Handler[] = [];
const server = new Server();
let target: string;
let eid: EidClient;
// The API key of calls the server always fails with UNAVAILABLE.
const ALWAYS_UNAVAILABLE = "eidk_always_unavailable";

const errorInfo = (reason: string, domain = "eid.v1", metadata: Record<string, string> = {}): Any => ({
  typeUrl: "type.googleapis.com/google.rpc.ErrorInfo",
  value: ErrorInfo.encode({ reason, domain, metadata }).finish(),
});
const retryInfo = (seconds: number, nanos = 0): Any => ({
  typeUrl: "type.googleapis.com/google.rpc.RetryInfo",
  value: RetryInfo.encode({ retryDelay: { seconds, nanos } }).finish(),
});const badRequest = (field: string): Any => ({
  typeUrl: "type.googleapis.com/google.rpc.BadRequest",
  value: BadRequest.encode(BadRequest.fromPartial({ fieldViolations: [{ field, description: "bad", reason: "FIELD_INVALID" }] })).finish(),
});

/** Fails with `code` and, in grpc-status-details-bin, `trailer` as given. */
function failing(code: status, trailer?: Uint8Array): Handler {
  return (_call, callback) => {
    const metadata = new Metadata();
    if (trailer !== undefined) metadata.set("grpc-status-details-bin", Buffer.from(trailer));
    callback({ code, details: "refused", metadata });
  };
}

function rich(code: status, ...details: Any[]): Uint8Array {
  return Status.encode({ code, message: "rich", details }).finish();
}

before(async () => {
  const handlers: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(IdentityServiceDefinition.methods)) {
    const answer: Handler = (_call, callback) => callback(null, method.responseType.fromPartial({}));
    handlers[key] = (call: ServerUnaryCall<any, any>, callback: sendUnaryData<any>) => {
      // Apart from the script: an attempt cut off by its deadline may still
      // reach the server during the next test and must not take its step.
      if (call.metadata.get("x-api-key")[0] === ALWAYS_UNAVAILABLE) return failing(status.UNAVAILABLE)(call, callback);
      seen.push({ rpc: method.name, requestId: call.request.requestId, at: Date.now() });
      (script.shift() ?? answer)(call, callback);
    };
  }
  server.addService(IdentityServiceService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  target = `127.0.0.1:${port}`;
  eid = new EidClient(target, { apiKey: "eidk_test", retry: { ...DEFAULT_RETRY, initialBackoffMs: 10 } });
});

after(() => {
  eid.close();
  server.forceShutdown();
});

function fresh(...steps: Handler[]): void {
  seen.length = 0;
  script = steps;
}

async function failure(call: Promise<unknown>): Promise<EidError> {
  const error = await call.then(
    () => assert.fail("the call succeeded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof EidError, `not an EidError: ${String(error)}`);
  return error;
}

test("garbage, truncated and wrongly typed details leave an EidError with the status code", async () => {
  const whole = rich(status.FAILED_PRECONDITION, errorInfo("SHARE_EXPIRED"));
  const damaged: Any = { typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: Uint8Array.from([0x0a, 0xff]) };
  for (const trailer of [
    Uint8Array.from([0x08]), // a tag without its value
    whole.subarray(0, whole.length - 3),
    rich(status.FAILED_PRECONDITION, damaged, { typeUrl: "type.googleapis.com/google.rpc.RetryInfo", value: whole }),
    Buffer.alloc(4096, 0xff),
  ]) {
    fresh(failing(status.FAILED_PRECONDITION, trailer));
    const error = await failure(eid.listShares());
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.equal(error.message, "refused");
    assert.equal(seen.length, 1);
  }
});

test("a large trailer (20 kB of ErrorInfo metadata) is decoded", async () => {
  const big = "x".repeat(20_000);
  fresh(failing(status.INTERNAL, rich(status.INTERNAL, errorInfo("INTERNAL", "eid.v1", { incident: big }))));
  const error = await failure(eid.listShares());
  assert.equal(error.reason, "INTERNAL");
  assert.equal(error.metadata.incident, big);
});

test("ErrorInfo metadata with odd keys stays data", async () => {
  const metadata = { constructor: "c", "": "empty", "ключ": "значение", toString: "t" };
  fresh(failing(status.INTERNAL, rich(status.INTERNAL, errorInfo("INTERNAL", "eid.v1", metadata))));
  const error = await failure(eid.listShares());
  assert.equal(error.metadata[""], "empty");
  assert.equal(error.metadata["ключ"], "значение");
  assert.equal(String(error), "INTERNAL INTERNAL: refused");
});

test("the first ErrorInfo with a reason is eid's, as the Python SDK reads it; BadRequests add up", async () => {
  // A proxy appending its own ErrorInfo does not replace eid's reason.
  const proxied = rich(
    status.FAILED_PRECONDITION,
    errorInfo("", ""),
    errorInfo("SHARE_EXPIRED", "eid.v1", { share: "s1" }),
    errorInfo("UPSTREAM_FAILED", "proxy.example", { hop: "1" }),
    badRequest("personal_id"),
    badRequest("password"),
  );
  fresh(failing(status.FAILED_PRECONDITION, proxied));
  const error = await failure(eid.listShares());
  assert.equal(error.reason, "SHARE_EXPIRED");
  assert.equal(error.domain, "eid.v1");
  assert.deepEqual(error.metadata, { share: "s1" });
  assert.deepEqual(error.fieldViolations.map((v) => v.field), ["personal_id", "password"]);
  // An ErrorInfo without a reason gives none (not ""), as without one.
  fresh(failing(status.FAILED_PRECONDITION, rich(status.FAILED_PRECONDITION, errorInfo("", ""))));
  const bare = await failure(eid.listShares());
  assert.equal(bare.reason, undefined);
  assert.equal(bare.domain, undefined);
  assert.equal(String(bare), "FAILED_PRECONDITION: refused");
});

test("RetryInfo: a negative delay is no pause, a huge or out-of-range one is not waited for", async () => {
  const limited = (...delay: Any[]) =>
    failing(status.RESOURCE_EXHAUSTED, rich(status.RESOURCE_EXHAUSTED, errorInfo("PARTY_RATE_LIMITED"), ...delay));
  // Negative: retried after the jittered backoff only.
  fresh(limited(retryInfo(-1_000_000)));
  const began = Date.now();
  await eid.verify({});
  assert.equal(seen.length, 2);
  assert.ok(Date.now() - began < 1000);
  // Longer than the policy's maxServerDelayMs, or past Number.MAX_SAFE_INTEGER
  // seconds (not decodable as a number): thrown at once.
  // Longer than the policy's maxServerDelayMs: thrown at once.
  for (const delay of [retryInfo(3_000_000_000), retryInfo(Number.MAX_SAFE_INTEGER, 999_999_999)]) {
    fresh(limited(delay));
    const error = await failure(eid.verify({}));
    assert.equal(error.reason, "PARTY_RATE_LIMITED");
    assert.equal(seen.length, 1);
  }
  // 2^63 - 1 seconds, beyond what a number holds exactly: the delay is unread.
  const beyond = Buffer.from([0x0a, 0x0c, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x10, 0x00]);
  fresh(limited({ typeUrl: "type.googleapis.com/google.rpc.RetryInfo", value: beyond }));
  const error = await failure(eid.verify({}));
  assert.equal(error.reason, "PARTY_RATE_LIMITED");
  assert.equal(error.retryDelayMs, undefined);
  assert.equal(seen.length, 1); // a rate limit without a readable delay is not retried
});

test("a status code the client does not know is an EidError", async () => {
  fresh((_call, callback) => callback({ code: 99 as status, details: "odd", metadata: new Metadata() }));
  const error = await failure(eid.listShares());
  assert.equal(error.message, "odd");
  assert.equal(seen.length, 1);
});

test("a write is retried with one generated UUID; a failure that is not retried is sent once", async () => {
  fresh(failing(status.UNAVAILABLE), failing(status.ABORTED), failing(status.UNAVAILABLE));
  await eid.register({});
  assert.equal(seen.length, 4);
  assert.equal(new Set(seen.map((s) => s.requestId)).size, 1);
  assert.match(seen[0].requestId ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // Each logical call has its own id.
  const first = seen[0].requestId;
  fresh();
  await eid.register({});
  assert.notEqual(seen[0].requestId, first);
  for (const code of [status.INTERNAL, status.UNKNOWN, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED]) {
    fresh(failing(code));
    await failure(eid.register({}));
    assert.equal(seen.length, 1, `code ${code}`);
  }
});

test("the deadline bounds every attempt and pause together", async () => {
  // Always UNAVAILABLE: many attempts, all within the deadline.
  const began = Date.now();
  const error = await failure(
    eid.listShares(
      {},
      { apiKey: ALWAYS_UNAVAILABLE, timeoutMs: 500, retry: { ...DEFAULT_RETRY, maxAttempts: 1000, maxBackoffMs: 50 } },
    ),
  );
  assert.equal(error.code, status.UNAVAILABLE);
  assert.ok(Date.now() - began < 1000, `took ${Date.now() - began} ms`);
});

test("the client's credentials are not in what it prints", async () => {
  const secrets = { apiKey: "eidk_s3cret", sessionToken: "sess_s3cret", officerKey: "off_s3cret" };
  const client = new EidClient(target, secrets);
  try {
    for (const shown of [
      inspect(client, { depth: Infinity, showHidden: true }),
      inspect(client.withCaller(secrets), { depth: Infinity }),
      JSON.stringify(client),
      String(client),
    ]) {
      assert.doesNotMatch(shown, /s3cret/);
    }
    // Nor in the errors of its calls.
    fresh(failing(status.UNAUTHENTICATED, rich(status.UNAUTHENTICATED, errorInfo("API_KEY_INVALID"))));
    const error = await failure(client.listShares());
    assert.doesNotMatch(inspect(error, { depth: Infinity, showHidden: true }) + String(error) + error.stack, /s3cret/);
    // And still sent.
    fresh();
    await client.verify({});
    assert.equal(seen.length, 1);
  } finally {
    client.close();
  }
});

// The trailers of tests/unit/test_client_errors.py: the three SDKs read them alike.
test("a trailer counts by its code alone: another message keeps the details, another code drops them", async () => {
  const trailerWith = (code: status, ...details: Any[]) =>
    Status.encode({ code, message: "the trailer's message", details }).finish();
  fresh(failing(status.FAILED_PRECONDITION, trailerWith(status.FAILED_PRECONDITION, errorInfo("SHARE_EXPIRED"))));
  const matching = await failure(eid.listShares());
  assert.equal(matching.reason, "SHARE_EXPIRED");
  assert.equal(String(matching), "FAILED_PRECONDITION SHARE_EXPIRED: refused");
  fresh(failing(status.UNAVAILABLE, trailerWith(status.NOT_FOUND, errorInfo("SHARE_NOT_FOUND"), retryInfo(1))));
  const contradicting = await failure(eid.listShares({}, { retry: NO_RETRY }));
  assert.deepEqual(
    [contradicting.reason, contradicting.domain, contradicting.retryDelayMs, contradicting.message],
    [undefined, undefined, undefined, "refused"],
  );
  assert.deepEqual(contradicting.metadata, {});
});

test("an ErrorInfo without a reason gives nothing, not its domain or metadata", async () => {
  const reasonless = errorInfo("", "proxy.example", { hop: "0" });
  const mixed = rich(
    status.FAILED_PRECONDITION,
    reasonless,
    errorInfo("SHARE_EXPIRED", "eid.v1", { s: "1" }),
    errorInfo("UPSTREAM", "proxy.example", { h: "2" }),
  );
  fresh(failing(status.FAILED_PRECONDITION, mixed));
  const error = await failure(eid.listShares());
  assert.deepEqual([error.reason, error.domain, { ...error.metadata }], ["SHARE_EXPIRED", "eid.v1", { s: "1" }]);
  fresh(failing(status.FAILED_PRECONDITION, rich(status.FAILED_PRECONDITION, reasonless)));
  const bare = await failure(eid.listShares());
  assert.deepEqual([bare.reason, bare.domain, { ...bare.metadata }], [undefined, undefined, {}]);
  assert.equal(bare.reasonEnum, ErrorReason.ERROR_REASON_UNSPECIFIED);
});

test("a reason of another domain than eid.v1 is not read as eid's enum", async () => {
  fresh(failing(status.INTERNAL, rich(status.INTERNAL, errorInfo("INTERNAL", "proxy.example"))));
  const error = await failure(eid.listShares());
  assert.equal(error.reason, "INTERNAL"); // the string stays, for logs
  assert.equal(error.reasonEnum, ErrorReason.ERROR_REASON_UNSPECIFIED);
});

/** A handler that never answers and notes when the client cancels the call. */
function heldUntilCancelled(cancelled: string[]): Handler {
  return (call) => call.on("cancelled", () => cancelled.push(call.request.requestId ?? ""));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const began = Date.now(); !condition(); await sleep(10)) {
    if (Date.now() - began > 5000) assert.fail(`waited 5 s for ${what}`);
  }
}

test("an aborted signal cancels the call in flight: the server sees it, CANCELLED, no retry", async () => {
  const cancelled: string[] = [];
  fresh(heldUntilCancelled(cancelled));
  const abort = new AbortController();
  const began = Date.now();
  const call = failure(eid.verify({}, { signal: abort.signal, timeoutMs: 10_000 }));
  await until(() => seen.length === 1, "the call to arrive");
  abort.abort(new Error("the integrator's request was aborted"));
  const error = await call;
  assert.equal(error.code, status.CANCELLED);
  assert.equal(error.reason, undefined);
  assert.equal(String(error), "CANCELLED: Cancelled on client");
  assert.equal((error.cause as Error).message, "the integrator's request was aborted");
  assert.ok(Date.now() - began < 5000, `took ${Date.now() - began} ms`);
  await until(() => cancelled.length === 1, "the server to see the cancellation");
  assert.deepEqual(cancelled, [seen[0].requestId]);
  assert.equal(seen.length, 1);
});

test("an abort during the pause before a retry ends the call: CANCELLED, the retry never sent", async () => {
  // The server asks for 3 s before the retry; the caller gives up first.
  const limited = rich(status.RESOURCE_EXHAUSTED, errorInfo("PARTY_RATE_LIMITED"), retryInfo(3));
  fresh(failing(status.RESOURCE_EXHAUSTED, limited));
  const abort = new AbortController();
  const began = Date.now();
  const call = failure(eid.verify({}, { signal: abort.signal }));
  await until(() => seen.length === 1, "the first attempt");
  abort.abort();
  const error = await call;
  assert.equal(error.code, status.CANCELLED);
  assert.ok(Date.now() - began < 2500, `waited ${Date.now() - began} ms of the 3 s pause`);
  assert.equal(seen.length, 1);
});

test("a signal aborted before the call sends nothing", async () => {
  fresh();
  const error = await failure(eid.verify({}, { signal: AbortSignal.abort() }));
  assert.equal(error.code, status.CANCELLED);
  assert.equal(seen.length, 0);
  // One signal for many calls that end normally keeps no listener behind.
  const abort = new AbortController();
  for (let i = 0; i < 20; i++) await eid.verify({}, { signal: abort.signal });
  assert.equal(EventEmitter.getEventListeners(abort.signal, "abort").length, 0);
});
