"""The customer service's gRPC API: reads from the local store, changes through
the command topic (answering with the version they produced)."""

from __future__ import annotations

from typing import Any

import grpc

from contracts.customer.v1 import customer_pb2 as pb
from contracts.customer.v1 import customer_pb2_grpc
from contracts.events.v1 import envelope_pb2
from services.customer.phones import InvalidPhone, to_e164
from troupe.grpc.calls import actor_of, change_result, refuse
from troupe.service.runtime import Runtime


class CustomerApi(customer_pb2_grpc.CustomerServiceServicer):
    def __init__(self, runtime: Runtime[pb.Customer]) -> None:
        self.runtime = runtime

    def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.ServicerContext
    ) -> pb.GetCustomerResponse:
        found = self.runtime.read(request.customer_id, request.min_version)
        if found is None:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no customer {request.customer_id}")
        elif found.version < request.min_version:
            refuse(
                context,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"customer {request.customer_id} is at version {found.version},"
                f" not yet {request.min_version}",
            )
        return pb.GetCustomerResponse(customer=found.state, version=found.version)

    def FindCustomerByPhone(
        self, request: pb.FindCustomerByPhoneRequest, context: grpc.ServicerContext
    ) -> pb.FindCustomerByPhoneResponse:
        try:
            phone = to_e164(request.phone)
        except InvalidPhone as error:
            refuse(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        found = self.runtime.find("phone", phone)
        if not found:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no customer with phone {phone}")
        return pb.FindCustomerByPhoneResponse(customer=found[0].state, version=found[0].version)

    def RegisterCustomer(
        self, request: pb.RegisterCustomerRequest, context: grpc.ServicerContext
    ) -> pb.RegisterCustomerResponse:
        return pb.RegisterCustomerResponse(result=self._change(request, context))

    def ChangeContact(
        self, request: pb.ChangeContactRequest, context: grpc.ServicerContext
    ) -> pb.ChangeContactResponse:
        return pb.ChangeContactResponse(result=self._change(request, context))

    def AwardLoyaltyPoints(
        self, request: pb.AwardLoyaltyPointsRequest, context: grpc.ServicerContext
    ) -> pb.AwardLoyaltyPointsResponse:
        return pb.AwardLoyaltyPointsResponse(result=self._change(request, context))

    def MergeCustomers(
        self, request: pb.MergeCustomersRequest, context: grpc.ServicerContext
    ) -> pb.MergeCustomersResponse:
        """The survivor takes the duplicate's data; the cascade then retires the duplicate."""
        return pb.MergeCustomersResponse(result=self._change(request, context))

    def _change(self, request: Any, context: grpc.ServicerContext) -> envelope_pb2.ChangeResult:
        return change_result(self.runtime, request, context, actor_of(context))
