"""The operator service as it runs: its rules and its gRPC API together."""

from contracts.operator.v1 import operator_pb2, operator_pb2_grpc
from services.operator.api import OperatorApi
from services.operator.service import operator

operator.serve(
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"],
    operator_pb2_grpc.add_OperatorServiceServicer_to_server,
    OperatorApi,
)

__all__ = ["operator"]
