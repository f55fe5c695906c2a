"""Security primitives: key ring, keyed hashes, password hashing, field encryption, share tokens.

Nothing here knows about gRPC or the database; callers pass plain values in and
get plain values (or domain errors) out. No secret value ever appears in an
exception message, log line or repr.
"""
