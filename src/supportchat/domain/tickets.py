"""Starting chats and reading tickets."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.repository import Repository
from .access import access_ticket, require_agent
from .clock import now
from .context import Chat
from .events import Audience, Event
from .identity import Actor
from .ids import new_id
from .inputs import QueueQuery, Rules, StartChatInput
from .limits import Quota
from .messaging import count_message, post_message, seq_of
from .records import Message, Status, Ticket, TicketPage
from .views import new_chat_ticket_payload


@dataclass(frozen=True, slots=True)
class Started:
    ticket: Ticket
    # True when the user already had an active chat: the message was added to it.
    is_existing: bool


async def start_chat(
    chat: Chat, actor: Actor, data: StartChatInput, *, connection: str | None = None
) -> Started:
    """Open a chat (and its ticket) for a user, or continue the one they have open.

    A user has at most one active chat. Concurrent starts race on the database's
    unique index; the loser retries and finds the winner's ticket."""
    body = chat.rules.text(data.message, missing="Initial message is required to start chat")
    category = chat.rules.category(data.category)
    priority = chat.rules.priority(data.priority)
    attachments = chat.rules.attachments(data.attachments)

    async def attempt() -> Started:
        async with chat.work() as work:
            moment = now()
            if data.clientMessageId is not None:
                # A repeated start answers with the chat the first one went to, even if
                # that chat has been closed since: the message is never stored twice.
                earlier = await work.repo.ticket_started_with(actor.id, data.clientMessageId)
                if earlier is not None:
                    found = await work.repo.get_ticket(earlier)
                    assert found is not None  # a message's ticket is never deleted
                    return Started(await with_messages(work.repo, found), is_existing=True)
            await work.repo.upsert_person(actor.person, moment)
            existing = await work.repo.active_ticket_of(actor.id)
            if existing is not None:
                ticket = await with_messages(work.repo, existing)
                await count_message(chat, ticket, actor)
                await post_message(
                    chat, work, ticket, actor, body, attachments, data.clientMessageId, connection
                )
                return Started(ticket, is_existing=True)

            number = await work.repo.next_ticket_number(moment.year)
            ticket_id = new_id()
            await work.repo.insert_ticket(
                {
                    "id": ticket_id,
                    "ticket_number": f"TKT-{moment.year}-{number:06d}",
                    "user_id": actor.id,
                    # The earlier server's format: M/D/YYYY, no leading zeros.
                    "subject": f"Chat Support - {moment.month}/{moment.day}/{moment.year}",
                    "status": Status.OPEN.value,
                    "priority": priority,
                    "category": category,
                    "is_chat": True,
                    "created_at": moment,
                    "updated_at": moment,
                    "last_seq": 0,
                }
            )
            created = await work.repo.get_ticket(ticket_id)
            assert created is not None  # inserted just above, in this transaction
            # Agents hear of a new chat as one new_chat_ticket, not as a user_message; the
            # user's other sockets still get the opening message as new_message.
            first = await post_message(
                chat,
                work,
                created,
                actor,
                body,
                attachments,
                data.clientMessageId,
                connection,
                tell_agents=False,
            )
            work.emit(
                Event(
                    "new_chat_ticket",
                    new_chat_ticket_payload(created, first),
                    Audience(all_agents=True),
                )
            )
            return Started(created, is_existing=False)

    return await chat.retrying(attempt)


async def get_ticket(chat: Chat, actor: Actor, ticket_id: str) -> Ticket:
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        return await with_messages(repo, ticket)


@dataclass(frozen=True, slots=True)
class Resumed:
    """A ticket with all its messages, and those after the one a client saw last."""

    ticket: Ticket
    missed: list[Message]


def resumed(ticket: Ticket, after_seq: int | None) -> Resumed:
    """`after_seq` None: the client named no last message, so it is sent nothing again."""
    if after_seq is None:
        return Resumed(ticket, [])
    return Resumed(ticket, [m for m in ticket.messages if m.seq > after_seq])


async def resume_ticket(
    chat: Chat, actor: Actor, ticket_id: str, last_message_id: str | None
) -> Resumed:
    """A client (re)subscribing to a chat: check it may, and find what it missed."""
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        after_seq = await seq_of(repo, ticket.id, last_message_id)
        return resumed(await with_messages(repo, ticket), after_seq)


async def history(chat: Chat, actor: Actor, page: int, limit: int) -> TicketPage:
    """The user's own chats, newest first."""
    async with chat.reading() as repo:
        total = await repo.count_tickets_of(actor.id)
        found = await repo.history_of(actor.id, offset=(page - 1) * limit, limit=limit)
        await _attach_messages(repo, found)
    return TicketPage(found, total, page, limit)


async def active_chats_of(chat: Chat, actor: Actor) -> list[Ticket]:
    async with chat.reading() as repo:
        found = await repo.active_tickets_of(actor.id)
        await _attach_messages(repo, found)
    return found


async def tickets_for_agents(chat: Chat, actor: Actor, query: QueueQuery) -> TicketPage:
    """The agents' queue: active chats (or those of one status), most recently updated
    first, a page at a time, each with its latest `query.messages` messages."""
    require_agent(actor)
    statuses = Rules.status_filter(query.status)
    await chat.limits.charge(Quota.ADMIN, actor.id)
    async with chat.reading() as repo:
        total = await repo.count_with_status(statuses)
        found = await repo.tickets_with_status(
            statuses, offset=(query.page - 1) * query.limit, limit=query.limit
        )
        await _attach_messages(repo, found, latest=query.messages)
    return TicketPage(found, total, query.page, query.limit)


async def with_messages(repo: Repository, ticket: Ticket) -> Ticket:
    await _attach_messages(repo, [ticket])
    return ticket


async def _attach_messages(
    repo: Repository, found: list[Ticket], latest: int | None = None
) -> None:
    by_ticket: dict[str, list[Message]] = await repo.messages_of([t.id for t in found], latest)
    for ticket in found:
        ticket.messages = by_ticket[ticket.id]
