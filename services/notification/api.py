"""The notification service's gRPC API: reads only."""

from __future__ import annotations

import grpc

from contracts.notification.v1 import notification_pb2 as pb
from contracts.notification.v1 import notification_pb2_grpc
from troupe.grpc.calls import refuse
from troupe.service.runtime import Runtime


class NotificationApi(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, runtime: Runtime[pb.Notification]) -> None:
        self.runtime = runtime

    def GetNotification(
        self, request: pb.GetNotificationRequest, context: grpc.ServicerContext
    ) -> pb.GetNotificationResponse:
        found = self.runtime.read(request.notification_id, request.min_version)
        if found is None or found.version < request.min_version:
            refuse(context, grpc.StatusCode.NOT_FOUND, f"no notification {request.notification_id}")
        return pb.GetNotificationResponse(notification=found.state, version=found.version)
