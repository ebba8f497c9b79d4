"""The interaction service's gRPC API."""

from __future__ import annotations

import grpc

from contracts.interaction.v1 import interaction_pb2 as pb
from contracts.interaction.v1 import interaction_pb2_grpc
from troupe.grpc.calls import actor_of, change_result, refuse
from troupe.service.runtime import Runtime


class InteractionApi(interaction_pb2_grpc.InteractionServiceServicer):
    def __init__(self, runtime: Runtime[pb.Interaction]) -> None:
        self.runtime = runtime

    def GetInteraction(
        self, request: pb.GetInteractionRequest, context: grpc.ServicerContext
    ) -> pb.GetInteractionResponse:
        found = self.runtime.read(request.interaction_id, request.min_version)
        if found is None or found.version < request.min_version:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no interaction {request.interaction_id}")
        return pb.GetInteractionResponse(interaction=found.state, version=found.version)

    def ListOpenInteractions(
        self, request: pb.ListOpenInteractionsRequest, _context: grpc.ServicerContext
    ) -> pb.ListOpenInteractionsResponse:
        sites = (
            [request.site]
            if request.site
            else sorted({entity.state.site for entity in self.runtime.scan()})
        )
        found = [
            entity.state for site in sites for entity in self.runtime.find("open_at_site", site)
        ]
        return pb.ListOpenInteractionsResponse(interactions=found)

    def AnswerInteraction(
        self, request: pb.AnswerInteractionRequest, context: grpc.ServicerContext
    ) -> pb.AnswerInteractionResponse:
        return pb.AnswerInteractionResponse(
            result=change_result(self.runtime, request, context, actor_of(context))
        )
