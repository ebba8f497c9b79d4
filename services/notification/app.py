"""The notification service as it runs: its rules and its gRPC API together."""

from contracts.notification.v1 import notification_pb2, notification_pb2_grpc
from services.notification.api import NotificationApi
from services.notification.service import notification

notification.serve(
    notification_pb2.DESCRIPTOR.services_by_name["NotificationService"],
    notification_pb2_grpc.add_NotificationServiceServicer_to_server,
    NotificationApi,
)

__all__ = ["notification"]
