"""The customer service as it runs: its rules and its gRPC API together."""

from contracts.customer.v1 import customer_pb2, customer_pb2_grpc
from services.customer.api import CustomerApi
from services.customer.service import customer

customer.serve(
    customer_pb2.DESCRIPTOR.services_by_name["CustomerService"],
    customer_pb2_grpc.add_CustomerServiceServicer_to_server,
    CustomerApi,
)

__all__ = ["customer"]
