"""Replaying what a socket missed without letting live messages overtake the replay.

A socket that joins a ticket with a `lastMessageId` is sent the later messages of that
ticket from the database. Meanwhile new messages keep being published to the rooms the
socket is in. Without care, one committed while the replay is being read could reach
the socket before the older replayed ones, and then again as part of the replay.

So while a socket catches up on a ticket, its gate for that ticket is closed: the
client manager holds back that ticket's `new_message` events for that socket instead of
sending them. When the replay has been sent, the held messages follow, in seq order,
minus those the replay already carried. The gate lives in the client manager because
every emit meant for a socket of this process passes there, whichever process
published it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from ..domain.events import Event
from ..domain.records import Message, Ticket
from ..domain.views import new_message_payload
from .publisher import SocketPublisher
from .sequencing import Pending, Sequencer

# The one event carrying a ticket's messages in seq order; the others (user_message for
# the agents' queue, message_sent to the sender) are notifications, not the transcript.
GATED_EVENT = "new_message"


@dataclass(slots=True)
class Gate:
    sid: str
    ticket_id: str
    # Payloads held back while the gate is closed, and the newest seq this socket was
    # sent through the gate (replayed or released), so nothing goes out twice.
    held: list[dict[str, Any]] = field(default_factory=list)
    sent_up_to: int = 0

    def covered(self, messages: Iterable[Message]) -> None:
        """These messages reached the socket another way (a whole transcript in one
        event or acknowledgement): held copies of them are not sent again."""
        self.sent_up_to = max([self.sent_up_to, *(m.seq for m in messages)])


class GatedManager(socketio.AsyncManager):  # type: ignore[misc]  # untyped library
    """python-socketio's client manager, with catch-up gates on local delivery.

    A manager that relays emits between processes (a pub/sub manager) must list this
    class after itself among its bases, so that the relayed emit passes here too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gates: dict[str, dict[str, Gate]] = {}
        # After a catch-up, the newest seq its socket was sent, by ticket and socket, for
        # as long as the sequencer has not delivered that far: a live message it still
        # holds behind a gap must not reach that socket a second time.
        self._floors: dict[str, dict[str, int]] = {}
        self.sequencer = Sequencer(self.fill_gap)
        # Reads a ticket's messages between two seqs (domain/recovery.py); set by app.py.
        self.read_between: Callable[[str, int, int], Awaitable[list[Event]]] | None = None
        # Told of each live new_message as this process delivers it (metrics.py).
        self.on_live_message: Callable[[dict[str, Any]], None] | None = None
        self.messages_delivered = 0  # new_message packets put in sockets' queues

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        target = to or room
        namespace = namespace or "/"
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        if callback is not None:  # a packet per recipient (its own ack id): the library's
            await super().emit(
                event,
                data,
                namespace=namespace,
                room=target,
                skip_sid=[*skipped, *self._hold(event, data, namespace, target)],
                callback=callback,
                **kwargs,
            )
            return
        if event == GATED_EVENT and isinstance(data, dict) and "seq" in data:
            # A ticket's live message: in seq order and once (realtime/sequencing.py).
            self.sequencer.admit(
                data["ticketId"],
                int(data["seq"]),
                lambda: self._deliver_live(event, data, namespace, target, skipped),
            )
            return
        self._deliver_live(event, data, namespace, target, skipped)

    def pending(self, event: Event) -> Pending:
        """A `new_message` read back from the database, ready for the sequencer."""
        rooms = SocketPublisher.rooms_for(event)
        return Pending(
            int(event.payload["seq"]),
            lambda: self._deliver_live(GATED_EVENT, event.payload, "/", rooms, []),
        )

    def admit_read_back(self, events: Iterable[Event]) -> None:
        """Messages read back from the database after a possible loss: delivered here
        unless this process already delivered them."""
        for event in events:
            found = self.pending(event)
            self.sequencer.admit(event.payload["ticketId"], found.seq, found.deliver)

    async def fill_gap(self, ticket_id: str, after_seq: int, before_seq: int) -> list[Pending]:
        if self.read_between is None:
            return []
        return [self.pending(e) for e in await self.read_between(ticket_id, after_seq, before_seq)]

    def _deliver_live(
        self, event: str, data: Any, namespace: str, target: Any, skipped: list[Any]
    ) -> None:
        skip = {*skipped, *self._hold(event, data, namespace, target)}
        if event == GATED_EVENT:
            if self._floors:
                skip.update(self._caught_up(data["ticketId"], int(data["seq"])))
            if self.on_live_message is not None:
                self.on_live_message(data)
        self._deliver(event, data, namespace, target, skip)

    def _caught_up(self, ticket_id: str, seq: int) -> list[str]:
        """Sockets whose catch-up already sent them this seq of the ticket; floors the
        sequencer has now passed are dropped."""
        floors = self._floors.get(ticket_id)
        if not floors:
            return []
        covered = [sid for sid, floor in floors.items() if seq <= floor]
        for sid in [sid for sid, floor in floors.items() if seq >= floor]:
            del floors[sid]
        if not floors:
            del self._floors[ticket_id]
        return covered

    def _deliver(self, event: str, data: Any, namespace: str, target: Any, skip: set[Any]) -> None:
        """python-socketio's emit without its task per recipient. The library encodes
        the packet once, then starts a task for each socket to put it in that socket's
        queue, and waits for them all: a task per delivery (an agent is sent every
        user_message) cost more than the delivery itself, about 15% of the server's
        time under load. Putting a packet in a socket's queue never waits (the queue
        is unbounded; the socket's writer task sends it), so here it is done directly.
        (The library's send also closes a socket past its ping timeout; Engine.IO's
        own service task does that too.)"""
        if namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        sockets = self.server.eio.sockets
        sent = 0
        for sid, eio_sid in self.get_participants(namespace, target):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            for frame in frames:
                socket.queue.put_nowait(frame)
            sent += 1
        if event == GATED_EVENT:
            self.messages_delivered += sent

    def _hold(self, event: str, data: Any, namespace: str, target: Any) -> list[str]:
        """Hold the event for each gated socket it was addressed to; return those sids."""
        if event != GATED_EVENT or not self._gates or not isinstance(data, dict):
            return []
        gates = self._gates.get(data.get("ticketId"))  # type: ignore[arg-type]
        if not gates:
            return []
        recipients = {sid for sid, _eio_sid in self.get_participants(namespace, target)}
        held = [sid for sid in gates if sid in recipients]
        for sid in held:
            gates[sid].held.append(data)
        return held

    @asynccontextmanager
    async def gate(self, sid: str, ticket_id: str) -> AsyncIterator[Gate]:
        """Close the socket's gate for the ticket for the duration of the block; send the
        held messages when it ends, whether or not the block succeeded."""
        gates = self._gates.setdefault(ticket_id, {})
        if sid in gates:
            # The same socket catching up on the same ticket twice at once: share the
            # gate, whose owner releases it.
            yield gates[sid]
            return
        gate = gates[sid] = Gate(sid, ticket_id)
        try:
            yield gate
        finally:
            # Synchronous from here on: no live message can be held and left behind.
            self.send(gate, gate.held)
            gate.held = []
            del gates[sid]
            if not gates:
                del self._gates[ticket_id]
            delivered = self.sequencer.delivered_up_to(ticket_id)
            if gate.sent_up_to and (delivered is None or delivered < gate.sent_up_to):
                self._floors.setdefault(ticket_id, {})[sid] = gate.sent_up_to

    def send(self, gate: Gate, payloads: Iterable[dict[str, Any]]) -> None:
        """Send the gate's socket these `new_message` payloads in seq order, skipping any
        it was already sent through this gate. Straight into the socket's queue: this
        process's own socket, not a message for the other processes."""
        for payload in sorted(payloads, key=lambda p: int(p["seq"])):
            if int(payload["seq"]) <= gate.sent_up_to:
                continue
            self._deliver(GATED_EVENT, payload, "/", gate.sid, set())
            gate.sent_up_to = int(payload["seq"])

    def replay(self, gate: Gate, ticket: Ticket, missed: list[Message]) -> None:
        self.send(gate, (new_message_payload(ticket, m) for m in missed))
