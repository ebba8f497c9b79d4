"""The routing service as it runs: its rules and its gRPC API together."""

from contracts.routing.v1 import routing_pb2, routing_pb2_grpc
from services.routing.api import RoutingApi
from services.routing.service import routing

routing.serve(
    routing_pb2.DESCRIPTOR.services_by_name["RoutingService"],
    routing_pb2_grpc.add_RoutingServiceServicer_to_server,
    RoutingApi,
)

__all__ = ["routing"]
