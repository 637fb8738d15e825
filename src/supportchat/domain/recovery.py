"""Reading back the live events of messages that some process may not have delivered.

Live delivery between processes goes through a message queue that keeps nothing: what
is published while it is down, or while a process is cut off from it, is gone. The
database has every message, so a process that may have missed some reads them back
here and delivers them itself; its sequencer (realtime/sequencing.py) drops those it
already delivered.

The events are rebuilt as they were announced, to the ticket's user and to the agents
who follow it now. The connection that sent a message is not known any more, so its
sender's own socket gets it too (clients recognise their own messages by id).
"""

from __future__ import annotations

from datetime import datetime

from .context import Chat
from .events import Event
from .messaging import new_message_event

# At most this many tickets are read back after an outage; clients of the others
# catch up on their own when they reconnect or join (docs/deployment.md).
MAX_TICKETS = 5000


async def messages_between(
    chat: Chat, ticket_id: str, after_seq: int, before_seq: int
) -> list[Event]:
    """The `new_message` events of a ticket's messages with after_seq < seq < before_seq."""
    if before_seq - after_seq <= 1:
        return []
    async with chat.reading() as repo:
        ticket = await repo.get_ticket(ticket_id)
        if ticket is None:
            return []
        found = await repo.messages_after(ticket_id, after_seq, before_seq - after_seq - 1)
        watchers = await repo.watchers(ticket_id)
    # Seqs have no gaps, so the first before_seq - after_seq - 1 after after_seq are
    # exactly the ones between.
    return [new_message_event(ticket, m, watchers) for m in found]


async def messages_since(chat: Chat, since: datetime) -> list[Event]:
    """The `new_message` events of every message stored at or after `since`, each
    ticket's in seq order."""
    async with chat.reading() as repo:
        written = await repo.tickets_written_since(since, MAX_TICKETS)
        ids = [ticket.id for ticket in written]
        found = await repo.messages_since(ids, since)
        watchers = await repo.watchers_of(ids)
    return [
        new_message_event(ticket, message, watchers[ticket.id])
        for ticket in written
        for message in found[ticket.id]
    ]
