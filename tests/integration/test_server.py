"""The standard services around eid.v1: health, reflection, graceful stop."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.harness import ServerHarness


def test_health_reports_serving(harness: ServerHarness) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "eid.v1.IdentityService"):
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(harness: ServerHarness) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        responses = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"eid.v1.IdentityService", "grpc.health.v1.Health"} <= names


def test_unknown_method_is_unimplemented(harness: ServerHarness) -> None:
    with grpc.insecure_channel(harness.target) as channel:
        call = channel.unary_unary(
            "/eid.v1.IdentityService/Nope",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
