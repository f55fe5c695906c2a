// EidClient's own behaviour against an in-process grpc-js server that fails on
// purpose: retries (same request_id, RetryInfo honoured, never for SignIn,
// none that could not finish in time), deadlines, credentials in metadata, and errors the real server does not send
// on demand (a reason newer than the stubs, a garbled trailer).
// Run by tests/e2e/test_node_interop.py: node --test dist/test/client.test.js
import assert from "node:assert/strict";
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
import { DEFAULT_RETRY, EidClient, EidError, ErrorReason } from "../src";
import { ErrorInfo, RetryInfo } from "../src/gen/google/rpc/error_details";
import { Status } from "../src/gen/google/rpc/status";
import { IdentityServiceDefinition, IdentityServiceService } from "../src/gen/eid/v1/identity_service";

type Handler = (call: ServerUnaryCall<any, any>, callback: sendUnaryData<any>) => void;
const seen: { rpc: string; requestId?: string; metadata: Metadata; at: number }[] = [];
let script: Handler[] = [];
const server = new Server();
let eid: EidClient;

function failing(code: status, reason: string, retryDelayMs?: number): Handler {
  return trailer(code, richStatus(code, reason, retryDelayMs));
}

/** A serialized google.rpc.Status as the server sends it. */
function richStatus(code: status, reason: string, retryDelayMs?: number): Buffer {
  const details = [{ typeUrl: "type.googleapis.com/google.rpc.ErrorInfo", value: ErrorInfo.encode({ reason, domain: "eid.v1", metadata: {} }).finish() }];
  if (retryDelayMs !== undefined) {
    const retryDelay = { seconds: Math.floor(retryDelayMs / 1000), nanos: (retryDelayMs % 1000) * 1e6 };
    details.push({ typeUrl: "type.googleapis.com/google.rpc.RetryInfo", value: RetryInfo.encode({ retryDelay }).finish() });
  }
  return Buffer.from(Status.encode({ code, message: reason.toLowerCase(), details }).finish());
}

function trailer(code: status, bytes: Buffer): Handler {
  return (_call, callback) => {
    const metadata = new Metadata();
    metadata.set("grpc-status-details-bin", bytes);
    callback({ code, details: "refused", metadata });
  };
}

const never: Handler = () => undefined;

before(async () => {
  const handlers: UntypedServiceImplementation = {};
  for (const [key, method] of Object.entries(IdentityServiceDefinition.methods)) {
    // Past the scripted failures, an empty answer of the method's type.
    const answer: Handler = (_call, callback) => callback(null, method.responseType.fromPartial({}));
    handlers[key] = (call: ServerUnaryCall<any, any>, callback: sendUnaryData<any>) => {
      seen.push({ rpc: method.name, requestId: call.request.requestId, metadata: call.metadata, at: Date.now() });
      (script.shift() ?? answer)(call, callback);
    };
  }
  server.addService(IdentityServiceService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  eid = new EidClient(`127.0.0.1:${port}`, { apiKey: "eidk_test", retry: { ...DEFAULT_RETRY, initialBackoffMs: 10 } });
});

after(() => {
  eid.close();
  server.forceShutdown();
});

function fresh(...steps: Handler[]): void {
  seen.length = 0;
  script = steps;
}

test("UNAVAILABLE and ABORTED are retried with the first attempt's request_id", async () => {
  fresh(failing(status.UNAVAILABLE, "STORE_BUSY"), failing(status.ABORTED, "CONCURRENT_REQUEST"));
  await eid.register({ personalId: "001190791514" });
  assert.equal(seen.length, 3);
  const ids = new Set(seen.map((s) => s.requestId));
  assert.equal(ids.size, 1);
  assert.match([...ids][0] ?? "", /^[0-9a-f-]{36}$/);
  assert.deepEqual(seen[0].metadata.get("x-api-key"), ["eidk_test"]);
});

test("the caller's request_id is kept", async () => {
  fresh(failing(status.UNAVAILABLE, "STORE_BUSY"));
  await eid.register({ requestId: "mine-1" });
  assert.deepEqual(seen.map((s) => s.requestId), ["mine-1", "mine-1"]);
});

test("SignIn gets a request_id and is retried with it (the server answers the first session)", async () => {
  fresh(failing(status.UNAVAILABLE, "STORE_BUSY"));
  await eid.signIn({ personalId: "001190791514", password: "x" });
  assert.equal(seen.length, 2);
  assert.match(seen[0].requestId ?? "", /^[0-9a-f-]{36}$/);
  assert.equal(seen[1].requestId, seen[0].requestId);
});

test("a rate limit with RetryInfo waits at least the delay, then retries", async () => {
  fresh(failing(status.RESOURCE_EXHAUSTED, "PARTY_RATE_LIMITED", 300));
  await eid.verify({ password: { personalId: "001190791514", password: "x" } });
  assert.equal(seen.length, 2);
  assert.ok(seen[1].at - seen[0].at >= 290, `retried after ${seen[1].at - seen[0].at} ms`);
});

test("throttles on people are thrown at once, with their RetryInfo", async () => {
  fresh(failing(status.RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_ATTEMPTS", 60_000));
  const error = await eid.verify({ password: { personalId: "1", password: "x" } }).catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.retryDelayMs, 60_000);
  assert.equal(seen.length, 1);
});

test("a reason newer than the stubs keeps its string; the enum says UNRECOGNIZED", async () => {
  fresh(failing(status.FAILED_PRECONDITION, "A_REASON_FROM_THE_FUTURE"));
  const error = await eid.listShares({}, { sessionToken: "tok" }).catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.reason, "A_REASON_FROM_THE_FUTURE");
  assert.equal(error.reasonEnum, ErrorReason.UNRECOGNIZED);
  assert.equal(error.codeName, "FAILED_PRECONDITION");
  assert.deepEqual(seen[0].metadata.get("authorization"), ["Bearer tok"]);
});

test("a garbled trailer leaves the status code and message", async () => {
  fresh(trailer(status.FAILED_PRECONDITION, Buffer.from([0xff, 0xff, 0xff])));
  const error = await eid.listShares().catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(error.reason, undefined);
  assert.equal(error.reasonEnum, ErrorReason.ERROR_REASON_UNSPECIFIED);
  assert.equal(error.message, "refused");
});

test("a trailer contradicting the status line is ignored", async () => {
  fresh(trailer(status.FAILED_PRECONDITION, richStatus(status.NOT_FOUND, "SHARE_NOT_FOUND")));
  const error = await eid.listShares().catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(error.reason, undefined);
});

test("the deadline bounds the call: DEADLINE_EXCEEDED, no reason", async () => {
  fresh(never);
  const began = Date.now();
  const error = await eid.listShares({}, { timeoutMs: 300 }).catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.code, status.DEADLINE_EXCEEDED);
  assert.equal(error.reason, undefined);
  assert.ok(Date.now() - began < 2000);
});

function later(ms: number, handler: Handler): Handler {
  return (call, callback) => void setTimeout(() => handler(call, callback), ms);
}

test("a retry that could not finish before the deadline is not started", async () => {
  // The first attempt took 250 ms of 400: a second as long could only time out.
  fresh(later(250, failing(status.UNAVAILABLE, "STORE_BUSY")), later(250, failing(status.UNAVAILABLE, "STORE_BUSY")));
  const error = await eid.listShares({}, { timeoutMs: 400 }).catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.reason, "STORE_BUSY");
  assert.equal(seen.length, 1);
});

test("a retry that runs out of the deadline throws the error it retried", async () => {
  fresh(failing(status.UNAVAILABLE, "STORE_BUSY"), never);
  const error = await eid.listShares({}, { timeoutMs: 1000 }).catch((e: unknown) => e);
  assert.ok(error instanceof EidError);
  assert.equal(error.code, status.UNAVAILABLE);
  assert.equal(error.reason, "STORE_BUSY");
  assert.equal(seen.length, 2);
});

test("withCaller speaks as the new caller only", async () => {
  fresh();
  await eid.withCaller({ sessionToken: "citizen" }).listSessions();
  assert.deepEqual(seen[0].metadata.get("x-api-key"), []);
  assert.deepEqual(seen[0].metadata.get("authorization"), ["Bearer citizen"]);
});
