"""The ticket service as it runs: its rules and its gRPC API together."""

from contracts.ticket.v1 import ticket_pb2, ticket_pb2_grpc
from services.ticket.api import TicketApi
from services.ticket.service import ticket

ticket.serve(
    ticket_pb2.DESCRIPTOR.services_by_name["TicketService"],
    ticket_pb2_grpc.add_TicketServiceServicer_to_server,
    TicketApi,
)

__all__ = ["ticket"]
