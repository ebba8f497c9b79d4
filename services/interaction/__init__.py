"""The interaction service: calls and chats and their state machine."""
