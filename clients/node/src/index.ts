// The eid Node.js client: EidClient (typed wrapper), EidError, the retry
// policy, and the generated messages and enums of protos/ (ts-proto).
export * from "./client";
export * from "./errors";
export * from "./retry";
export * from "./gen/eid/v1/identity_service";
export { ErrorReason, errorReasonFromJSON, errorReasonToJSON } from "./gen/eid/errors/v1/error_reason";
export { status, credentials, Metadata } from "@grpc/grpc-js";
