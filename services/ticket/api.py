"""The ticket service's gRPC API."""

from __future__ import annotations

from typing import Any

import grpc

from contracts.events.v1 import envelope_pb2
from contracts.ticket.v1 import ticket_pb2 as pb
from contracts.ticket.v1 import ticket_pb2_grpc
from services.ticket.service import OPEN
from troupe.grpc.calls import actor_of, change_result, refuse
from troupe.service.runtime import Runtime


class TicketApi(ticket_pb2_grpc.TicketServiceServicer):
    def __init__(self, runtime: Runtime[pb.Ticket]) -> None:
        self.runtime = runtime

    def GetTicket(
        self, request: pb.GetTicketRequest, context: grpc.ServicerContext
    ) -> pb.GetTicketResponse:
        found = self.runtime.read(request.ticket_id, request.min_version)
        if found is None or found.version < request.min_version:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no ticket {request.ticket_id}")
        return pb.GetTicketResponse(ticket=found.state, version=found.version)

    def ListCustomerTickets(
        self, request: pb.ListCustomerTicketsRequest, _context: grpc.ServicerContext
    ) -> pb.ListCustomerTicketsResponse:
        tickets = [e.state for e in self.runtime.find("customer", request.customer_id)]
        if request.open_only:
            tickets = [t for t in tickets if t.status in OPEN]
        return pb.ListCustomerTicketsResponse(tickets=tickets)

    def OpenTicket(
        self, request: pb.OpenTicketRequest, context: grpc.ServicerContext
    ) -> pb.OpenTicketResponse:
        return pb.OpenTicketResponse(result=self._change(request, context))

    def StartWork(
        self, request: pb.StartWorkRequest, context: grpc.ServicerContext
    ) -> pb.StartWorkResponse:
        return pb.StartWorkResponse(result=self._change(request, context))

    def AwaitCustomer(
        self, request: pb.AwaitCustomerRequest, context: grpc.ServicerContext
    ) -> pb.AwaitCustomerResponse:
        return pb.AwaitCustomerResponse(result=self._change(request, context))

    def ResolveTicket(
        self, request: pb.ResolveTicketRequest, context: grpc.ServicerContext
    ) -> pb.ResolveTicketResponse:
        return pb.ResolveTicketResponse(result=self._change(request, context))

    def ReopenTicket(
        self, request: pb.ReopenTicketRequest, context: grpc.ServicerContext
    ) -> pb.ReopenTicketResponse:
        return pb.ReopenTicketResponse(result=self._change(request, context))

    def CloseTicket(
        self, request: pb.CloseTicketRequest, context: grpc.ServicerContext
    ) -> pb.CloseTicketResponse:
        return pb.CloseTicketResponse(result=self._change(request, context))

    def _change(self, request: Any, context: grpc.ServicerContext) -> envelope_pb2.ChangeResult:
        return change_result(self.runtime, request, context, actor_of(context))
