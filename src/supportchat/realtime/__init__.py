"""The Socket.IO transport: authenticates sockets, maps events to domain actions."""
