"""Which agents are online, and the `admin_status_update` events that tell the other agents.

Presence lives in the database, one row per connected agent socket, so every server
process sees the same picture. Each process refreshes its own rows on a heartbeat; rows
of a process that died stop being refreshed and no longer count after the TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from ..storage.repository import Repository
from .clock import iso, now
from .context import Chat, Work
from .events import Audience, Event
from .identity import Actor, Person
from .records import Ticket


async def status_update(repo: Repository, agent_id: str, ttl_seconds: float) -> Event:
    online = await repo.count_presence(agent_id, now() - timedelta(seconds=ttl_seconds)) > 0
    return Event(
        "admin_status_update",
        _status(
            agent_id,
            await repo.person_name(agent_id) or agent_id,
            online,
            await repo.count_assigned_active(agent_id),
        ),
        Audience(all_agents=True),
    )


def _status(agent_id: str, name: str, online: bool, active_chats: int) -> dict[str, object]:
    return {"adminId": agent_id, "adminName": name, "isOnline": online, "activeChats": active_chats}


async def roster(chat: Chat) -> list[dict[str, object]]:
    """An `admin_status_update` payload for each agent online now: what a newly
    connected agent socket is sent, since the updates before it connected never
    reached it."""
    async with chat.reading() as repo:
        found = await repo.agent_roster(now() - timedelta(seconds=chat.presence_ttl_seconds))
    return [_status(agent_id, name, True, active) for agent_id, name, active in found]


async def announce_assignment(
    chat: Chat, work: Work, ticket: Ticket, agent: Actor, at: datetime
) -> None:
    """Tell all agents that a chat is now this agent's, and that their load changed."""
    work.emit(
        Event(
            "chat_assigned",
            {
                "ticketId": ticket.id,
                "ticketNumber": ticket.ticket_number,
                "assignedTo": agent.id,
                "agentName": agent.name,
                "assignedAt": iso(at),
            },
            Audience(all_agents=True),
        )
    )
    work.emit(await status_update(work.repo, agent.id, chat.presence_ttl_seconds))


async def agent_connected(chat: Chat, agent: Person, connection: str, node_id: str) -> None:
    async with chat.work() as work:
        moment = now()
        await work.repo.upsert_person(agent, moment)
        await work.repo.add_presence(connection, agent.id, node_id, moment)
        fresh = moment - timedelta(seconds=chat.presence_ttl_seconds)
        if await work.repo.count_presence(agent.id, fresh) == 1:
            work.emit(await status_update(work.repo, agent.id, chat.presence_ttl_seconds))


async def agent_disconnected(chat: Chat, agent_id: str, connection: str) -> None:
    async with chat.work() as work:
        await work.repo.remove_presence(connection)
        fresh = now() - timedelta(seconds=chat.presence_ttl_seconds)
        if await work.repo.count_presence(agent_id, fresh) == 0:
            work.emit(await status_update(work.repo, agent_id, chat.presence_ttl_seconds))


async def heartbeat(chat: Chat, node_id: str, live: Mapping[str, Person]) -> None:
    """Make this process's rows match its connected agent sockets (`live`, by socket id),
    refresh them, and drop everyone's expired ones.

    Matching repairs what an outage left behind: a socket that connected while the
    database was down has no row yet, and one that left then still has its row."""
    async with chat.work() as work:
        moment = now()
        stored = await work.repo.presence_of_node(node_id)
        changed: set[str] = set()
        for sid in stored.keys() - live.keys():
            await work.repo.remove_presence(sid)
            changed.add(stored[sid])
        for sid in live.keys() - stored.keys():
            agent = live[sid]
            await work.repo.upsert_person(agent, moment)
            await work.repo.add_presence(sid, agent.id, node_id, moment)
            changed.add(agent.id)
        await work.repo.touch_presence(node_id, moment)
        # Rows of a process that stopped refreshing them (it crashed): whichever process
        # purges them tells the agents, once.
        expired = await work.repo.purge_presence(
            stale_before=moment - timedelta(seconds=chat.presence_ttl_seconds)
        )
        for agent_id in sorted(changed):
            work.emit(await status_update(work.repo, agent_id, chat.presence_ttl_seconds))
        await _announce_gone(chat, work, expired - changed)


async def forget_node(chat: Chat, node_id: str) -> None:
    """On shutdown: this process's sockets are gone."""
    async with chat.work() as work:
        gone = await work.repo.purge_presence(
            node_id=node_id, stale_before=now() - timedelta(days=3650)
        )
        await _announce_gone(chat, work, gone)


async def _announce_gone(chat: Chat, work: Work, agent_ids: set[str]) -> None:
    """An admin_status_update for each of these agents who has no socket left anywhere."""
    for agent_id in sorted(agent_ids):
        update = await status_update(work.repo, agent_id, chat.presence_ttl_seconds)
        if not update.payload["isOnline"]:
            work.emit(update)


async def online_agents(chat: Chat) -> list[str]:
    async with chat.reading() as repo:
        return await repo.online_agents(now() - timedelta(seconds=chat.presence_ttl_seconds))
