"""OpenTelemetry for the server: a span and metrics per RPC, child spans for
database work, password hashing and signing. Off unless an OTEL_* variable
names an exporter (setup.py); off, nothing of the SDK is even imported and
each hook below costs a None check.

Spans, metrics and logs carry method names, status codes, ErrorInfo reasons
and party ids, never a request field: no ID number, name, phone, code,
password or token reaches them."""
