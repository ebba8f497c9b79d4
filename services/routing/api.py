"""The routing service's gRPC API: reads only (routing reacts to the cascade)."""

from __future__ import annotations

import grpc

from contracts.routing.v1 import routing_pb2 as pb
from contracts.routing.v1 import routing_pb2_grpc
from troupe.grpc.calls import refuse
from troupe.service.runtime import Runtime


class RoutingApi(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, runtime: Runtime[pb.Assignment]) -> None:
        self.runtime = runtime

    def GetAssignment(
        self, request: pb.GetAssignmentRequest, context: grpc.ServicerContext
    ) -> pb.GetAssignmentResponse:
        found = self.runtime.read(request.interaction_id, request.min_version)
        if found is None or found.version < request.min_version:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no routing of {request.interaction_id}")
        return pb.GetAssignmentResponse(assignment=found.state, version=found.version)

    def ListWaiting(
        self, request: pb.ListWaitingRequest, _context: grpc.ServicerContext
    ) -> pb.ListWaitingResponse:
        waiting = [e.state for e in self.runtime.find("state", "waiting")]
        if request.site:
            waiting = [call for call in waiting if call.site == request.site]
        waiting.sort(key=lambda call: call.queued_at.ToNanoseconds())
        return pb.ListWaitingResponse(assignments=waiting)
