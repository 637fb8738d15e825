"""Delivers domain events to Socket.IO rooms. One emit per event, whatever the audience size:
python-socketio encodes the packet once and the client manager fans it out (to every
process, when a message queue manager is configured)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import socketio

from ..domain.events import Event
from .rooms import ALL_AGENTS, agent_room, user_room

log = logging.getLogger(__name__)


class SocketPublisher:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self.messages_published = 0  # messages this process stored and announced

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.name == "new_message":
                self.messages_published += 1
            rooms = self.rooms_for(event)
            if not rooms:
                continue
            try:
                await self._sio.emit(
                    event.name,
                    event.payload,
                    to=rooms,
                    skip_sid=event.audience.exclude_connection,
                )
            except Exception:  # a delivery failure must not undo what was committed
                log.exception("could not deliver %s", event.name)

    @staticmethod
    def rooms_for(event: Event) -> list[str]:
        audience = event.audience
        rooms = [user_room(u) for u in audience.users]
        if audience.all_agents:
            rooms.append(ALL_AGENTS)
        else:
            rooms.extend(agent_room(a) for a in audience.agents)
        return rooms
