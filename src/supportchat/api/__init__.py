"""The REST transport: parses requests, calls one domain action, renders the envelope."""
