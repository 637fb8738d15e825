"""The chat domain: tickets, messages and who may do what. Knows neither HTTP nor Socket.IO."""
