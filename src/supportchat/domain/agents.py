"""What agents do to a chat: join (and take) it, leave it, close it."""

from __future__ import annotations

from dataclasses import dataclass

from .access import access_ticket, ensure_active, require_agent
from .clock import iso, now
from .context import Chat
from .events import Audience, Event
from .identity import Actor
from .inputs import CloseChatInput
from .limits import Quota
from .messaging import progress, seq_of
from .presence import announce_assignment, status_update
from .records import PersonRef, Status, Ticket
from .tickets import Resumed, resumed, with_messages

DEFAULT_RESOLUTION = "Chat session completed successfully"


async def join_ticket(
    chat: Chat, actor: Actor, ticket_id: str, last_message_id: str | None = None
) -> Resumed:
    """The agent follows the chat from now on and takes it if nobody has it.

    A chat that another agent has stays theirs: the joiner follows it, and the result
    names the real assignee. `agent_joined` goes out once per agent, not on every
    re-join (dashboards join over REST and then again over the socket). A bad
    `last_message_id` refuses the join before anything changes."""
    require_agent(actor)
    await chat.limits.charge(Quota.ADMIN, actor.id)
    again = await _rejoin(chat, actor, ticket_id, last_message_id)
    if again is not None:
        return again
    async with chat.work() as work:
        ticket = await access_ticket(work.repo, actor, ticket_id, for_update=True)
        work.in_turn(ticket.id)
        ensure_active(ticket)
        after_seq = await seq_of(work.repo, ticket.id, last_message_id)
        moment = now()
        await work.repo.upsert_person(actor.person, moment)
        changes = progress(ticket, actor, moment)
        assigned = "assigned_to" in changes
        if changes:
            changes["updated_at"] = moment
            await work.repo.update_ticket(ticket.id, **changes)
            ticket = await access_ticket(work.repo, actor, ticket.id)
        newly_following = await work.repo.add_watcher(ticket.id, actor.id, moment)
        if newly_following:
            watchers = tuple(await work.repo.watchers(ticket.id))
            work.emit(
                Event(
                    "agent_joined",
                    {
                        "ticketId": ticket.id,
                        "ticketNumber": ticket.ticket_number,
                        "agentName": actor.name,
                        "agentId": actor.id,
                        "joinedAt": iso(moment),
                    },
                    Audience(users=(ticket.user.id,), agents=watchers),
                )
            )
        if assigned:
            await announce_assignment(chat, work, ticket, actor, moment)
        return resumed(await with_messages(work.repo, ticket), after_seq)


async def _rejoin(
    chat: Chat, actor: Actor, ticket_id: str, last_message_id: str | None
) -> Resumed | None:
    """A join that would change nothing, answered from a read; None when it would.

    Agents join the same chats again and again: the dashboard's socket after its REST
    join, every chat after every reconnect (a reconnect storm re-joins them all at
    once). When the agent already follows the chat and joining would not change it
    (`progress`: it is in progress and has an assignee), a join writes nothing and
    announces nothing, so it needs neither the write lock nor a commit. It checks what
    the writing join checks, in the same order, so that a refusal is the same either
    way."""
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        ensure_active(ticket)
        after_seq = await seq_of(repo, ticket.id, last_message_id)
        if progress(ticket, actor, now()) or actor.id not in await repo.watchers(ticket.id):
            return None
        return resumed(await with_messages(repo, ticket), after_seq)


async def leave_ticket(chat: Chat, actor: Actor, ticket_id: str) -> Ticket:
    """Stop following a chat. An assignment stays: leaving is not handing over."""
    require_agent(actor)
    await chat.limits.charge(Quota.ADMIN, actor.id)
    async with chat.work() as work:
        ticket = await access_ticket(work.repo, actor, ticket_id)
        await work.repo.remove_watcher(ticket.id, actor.id)
        return ticket


@dataclass(frozen=True, slots=True)
class Closed:
    ticket: Ticket
    # True when the chat was already resolved: the earlier resolution is returned as is.
    already: bool


async def close_ticket(chat: Chat, actor: Actor, ticket_id: str, data: CloseChatInput) -> Closed:
    require_agent(actor)
    await chat.limits.charge(Quota.ADMIN, actor.id)
    summary = (data.resolutionSummary or "").strip() or DEFAULT_RESOLUTION
    async with chat.work() as work:
        ticket = await access_ticket(work.repo, actor, ticket_id, for_update=True)
        work.in_turn(ticket.id)
        if not ticket.status.is_active:
            return Closed(ticket, already=True)
        moment = now()
        await work.repo.upsert_person(actor.person, moment)
        await work.repo.update_ticket(
            ticket.id,
            status=Status.RESOLVED.value,
            resolved_at=moment,
            resolved_by=actor.id,
            resolution_summary=summary,
            updated_at=moment,
        )
        ticket.status = Status.RESOLVED
        ticket.resolved_at = moment
        ticket.resolved_by = PersonRef(actor.id, actor.name, actor.person.email)
        ticket.resolution_summary = summary
        ticket.updated_at = moment
        work.emit(
            Event(
                "chat_closed",
                {
                    "ticketId": ticket.id,
                    "ticketNumber": ticket.ticket_number,
                    "closedBy": actor.name,
                    "closedById": actor.id,
                    "closedAt": iso(moment),
                    "resolutionSummary": summary,
                    "status": ticket.status.value,
                },
                Audience(users=(ticket.user.id,), all_agents=True),
            )
        )
        if ticket.assigned_to is not None:
            work.emit(
                await status_update(work.repo, ticket.assigned_to.id, chat.presence_ttl_seconds)
            )
        return Closed(ticket, already=False)
