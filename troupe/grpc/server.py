"""gRPC servers of the layer: every one serves the standard health service and
server reflection, so stock tools (grpcurl, grpc_health_probe) can list and call it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

# Connections are closed after this age so that clients re-resolve and spread
# over new instances instead of sticking to one HTTP/2 connection forever.
MAX_CONNECTION_AGE_MS = 30_000


class GrpcServer:
    def __init__(self, address: str, max_workers: int = 16, interceptors: Sequence[Any] = ()) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=list(interceptors),
            options=[
                ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
                ("grpc.max_connection_age_grace_ms", 5_000),
            ],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot listen for gRPC on {address}")

    def add(self, full_name: str, add_to_server: Any, servicer: Any) -> None:
        add_to_server(servicer, self.server)
        self._names.append(full_name)

    def start(self) -> None:
        reflection.enable_server_reflection([*self._names, reflection.SERVICE_NAME], self.server)
        self.server.start()
        for name in self._names:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self._names]:
            self.health.set(name, status)

    def stop(self, grace: float = 5.0) -> None:
        self.set_serving(False)
        self.server.stop(grace).wait()
