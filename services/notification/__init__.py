"""The notification service: what the customer is told about their tickets."""
