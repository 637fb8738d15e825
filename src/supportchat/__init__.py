"""supportchat: a live support chat service where every chat is a ticket."""

__version__ = "0.1.0"
