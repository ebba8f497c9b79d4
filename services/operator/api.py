"""The operator service's gRPC API."""

from __future__ import annotations

import grpc

from contracts.operator.v1 import operator_pb2 as pb
from contracts.operator.v1 import operator_pb2_grpc
from troupe.grpc.calls import actor_of, change_result, refuse
from troupe.service.runtime import Runtime


class OperatorApi(operator_pb2_grpc.OperatorServiceServicer):
    def __init__(self, runtime: Runtime[pb.Operator]) -> None:
        self.runtime = runtime

    def GetOperator(
        self, request: pb.GetOperatorRequest, context: grpc.ServicerContext
    ) -> pb.GetOperatorResponse:
        found = self.runtime.read(request.operator_id, request.min_version)
        if found is None or found.version < request.min_version:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no operator {request.operator_id}")
        return pb.GetOperatorResponse(operator=found.state, version=found.version)

    def ListOperators(
        self, request: pb.ListOperatorsRequest, _context: grpc.ServicerContext
    ) -> pb.ListOperatorsResponse:
        found = self.runtime.find("site", request.site) if request.site else self.runtime.scan()
        return pb.ListOperatorsResponse(operators=[entity.state for entity in found])

    def RegisterOperator(
        self, request: pb.RegisterOperatorRequest, context: grpc.ServicerContext
    ) -> pb.RegisterOperatorResponse:
        return pb.RegisterOperatorResponse(
            result=change_result(self.runtime, request, context, actor_of(context))
        )

    def SetPresence(
        self, request: pb.SetPresenceRequest, context: grpc.ServicerContext
    ) -> pb.SetPresenceResponse:
        return pb.SetPresenceResponse(
            result=change_result(self.runtime, request, context, actor_of(context))
        )
