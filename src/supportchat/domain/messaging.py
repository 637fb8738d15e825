"""Sending messages: the one path every message takes, whichever transport carried it."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.repository import Repository
from .access import access_ticket, ensure_active
from .clock import now
from .context import Chat, Work
from .errors import MessageNotFound
from .events import Audience, Event
from .identity import Actor
from .ids import is_valid_id, new_id
from .inputs import SendMessageInput
from .limits import Quota
from .presence import announce_assignment
from .records import Message, PersonRef, Status, Ticket
from .views import new_message_payload, user_message_payload


@dataclass(frozen=True, slots=True)
class Sent:
    message: Message
    ticket: Ticket
    # True when this send repeated an earlier clientMessageId: nothing new was stored.
    duplicate: bool = False


async def send_message(
    chat: Chat,
    actor: Actor,
    ticket_id: str,
    data: SendMessageInput,
    *,
    connection: str | None = None,
) -> Sent:
    body = chat.rules.text(data.message, missing="Message is required")
    attachments = chat.rules.attachments(data.attachments)

    async def attempt() -> Sent:
        async with chat.work() as work:
            ticket = await access_ticket(work.repo, actor, ticket_id, for_update=True)
            sender = actor.on(ticket)
            if data.clientMessageId is not None:
                earlier = await work.repo.message_by_client_id(ticket.id, data.clientMessageId)
                if earlier is not None:
                    return Sent(earlier, ticket, duplicate=True)
            ensure_active(ticket)
            await count_message(chat, ticket, sender)
            await work.repo.upsert_person(sender.person, now())
            message = await post_message(
                chat, work, ticket, sender, body, attachments, data.clientMessageId, connection
            )
            return Sent(message, ticket)

    return await chat.retrying(attempt)


async def count_message(chat: Chat, ticket: Ticket, sender: Actor) -> None:
    """Charge a message that is about to be stored to its chat's quota (and an agent's
    reply to their admin actions). Refused sends and repeats are never charged."""
    uses = [(Quota.MESSAGES, (ticket.id,))]
    if sender.is_agent:
        uses.append((Quota.ADMIN, (sender.id,)))
    await chat.limits.hit_all(*uses)


async def post_message(
    chat: Chat,
    work: Work,
    ticket: Ticket,
    actor: Actor,
    body: str,
    attachments: list[dict[str, object]],
    client_message_id: str | None,
    connection: str | None,
    *,
    tell_agents: bool = True,
) -> Message:
    """Store a message on an active ticket (already checked) and queue its events.

    Status follows the conversation: an agent's reply to an open chat puts it in
    progress (and assigns it, if nobody has it), a user's message on a chat waiting for
    them puts it back in progress."""
    moment = now()
    changes: dict[str, object] = {"updated_at": moment}
    assigned = False
    if actor.is_agent:
        if ticket.status is Status.OPEN:
            changes["status"] = Status.IN_PROGRESS.value
        if ticket.assigned_to is None:
            changes.update(assigned_to=actor.id, assigned_at=moment)
            assigned = True
        await work.repo.add_watcher(ticket.id, actor.id, moment)
    elif ticket.status is Status.WAITING_FOR_USER:
        changes["status"] = Status.IN_PROGRESS.value
    seq = await work.repo.take_next_seq(ticket.id, **changes)
    work.in_turn(ticket.id)  # the ticket's row is locked now, by the update above
    if "status" in changes:
        ticket.status = Status(str(changes["status"]))
    if assigned:
        ticket.assigned_to = PersonRef(actor.id, actor.name, actor.person.email)
        ticket.assigned_at = moment
    ticket.updated_at = moment
    message = Message(
        id=new_id(),
        ticket_id=ticket.id,
        seq=seq,
        sender_id=actor.id,
        sender_name=actor.name,
        sender_model="Admin" if actor.is_agent else "DTUser",
        is_admin_reply=actor.is_agent,
        body=body,
        attachments=list(attachments),
        client_message_id=client_message_id,
        created_at=moment,
    )
    await work.repo.insert_message(message)
    ticket.last_seq = seq
    ticket.messages.append(message)

    watchers = tuple(await work.repo.watchers(ticket.id))
    work.emit(
        Event(
            "new_message",
            new_message_payload(ticket, message),
            Audience(users=(ticket.user.id,), agents=watchers, exclude_connection=connection),
        )
    )
    if tell_agents and not actor.is_agent:
        work.emit(
            Event("user_message", user_message_payload(ticket, message), Audience(all_agents=True))
        )
    if assigned:
        await announce_assignment(chat, work, ticket, actor, moment)
    return message


@dataclass(frozen=True, slots=True)
class Page:
    messages: list[Message]
    has_more: bool


async def messages_after(
    chat: Chat, actor: Actor, ticket_id: str, after: str | None, limit: int
) -> Page:
    """Messages of a ticket after the one a client saw last, in order (catch-up)."""
    async with chat.reading() as repo:
        ticket = await access_ticket(repo, actor, ticket_id)
        after_seq = await seq_of(repo, ticket.id, after) or 0
        found = await repo.messages_after(ticket.id, after_seq, limit + 1)
    return Page(found[:limit], has_more=len(found) > limit)


async def seq_of(repo: Repository, ticket_id: str, message_id: str | None) -> int | None:
    """The seq of a message of this ticket; None for none. Any other id is refused."""
    if message_id is None or message_id == "":
        return None
    message = await repo.message(ticket_id, message_id) if is_valid_id(message_id) else None
    if message is None:
        raise MessageNotFound(f"Message '{message_id[:64]}' is not a message of this chat")
    return message.seq
