"""The interaction service as it runs: its rules and its gRPC API together."""

from contracts.interaction.v1 import interaction_pb2, interaction_pb2_grpc
from services.interaction.api import InteractionApi
from services.interaction.service import interaction

interaction.serve(
    interaction_pb2.DESCRIPTOR.services_by_name["InteractionService"],
    interaction_pb2_grpc.add_InteractionServiceServicer_to_server,
    InteractionApi,
)

__all__ = ["interaction"]
