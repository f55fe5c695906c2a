"""gRPC server reflection under both names tools ask for: grpc.reflection.v1
(grpcurl, Postman, current grpc_cli) and grpc.reflection.v1alpha (older ones).

grpcio-reflection ships v1alpha only. v1 is the same messages in another
package, so the bytes on the wire are the same: one servicer answers both,
and a copy of the descriptor renamed to v1 is added to the pool, so a tool
can describe v1 itself too."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

# reflection.aio (public) is this module; the type stubs know neither.
from grpc_reflection.v1alpha._async import ReflectionServicer

V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _renamed(fields: Iterable[descriptor_pb2.FieldDescriptorProto], old: str) -> None:
    for f in fields:
        if f.type_name.startswith(old):
            f.type_name = f".{V1_PACKAGE}." + f.type_name.removeprefix(old)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(_V1_FILE)
        return  # a second server in this process
    except KeyError:
        pass
    file = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    old = f".{file.package}."
    file.name, file.package = _V1_FILE, V1_PACKAGE
    file.ClearField("options")  # v1alpha's Java and Objective-C names
    for message in file.message_type:
        _renamed(message.field, old)
    for method in file.service[0].method:
        method.input_type = method.input_type.replace(old, f".{V1_PACKAGE}.")
        method.output_type = method.output_type.replace(old, f".{V1_PACKAGE}.")
    pool.AddSerializedFile(file.SerializeToString())


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serves reflection (v1 and v1alpha) listing `service_names` and itself."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    servicer = ReflectionServicer(names, pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    info: Any = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    v1 = grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": info})
    server.add_generic_rpc_handlers((v1,))
