"""Sending messages: the one path every message takes, whichever transport carried it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.exc import IntegrityError

from ..storage.repository import Repository
from .access import access_ticket, ensure_active, visible
from .batching import GroupCommit
from .clock import now
from .context import Chat, Work
from .errors import ChatError, MessageNotFound
from .events import Audience, Event
from .identity import Actor
from .ids import is_valid_id, new_id
from .inputs import SendMessageInput, require_ticket_id
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


@dataclass(frozen=True, slots=True)
class _Send:
    actor: Actor
    ticket_id: str
    body: str
    attachments: list[dict[str, object]]
    client_message_id: str | None
    connection: str | None


@dataclass(frozen=True, slots=True)
class _Posted:
    """A send of a batch that is being stored."""

    request: _Send
    sender: Actor
    ticket: Ticket
    message: Message
    assigned: bool  # the sender took the chat


async def send_message(
    chat: Chat,
    actor: Actor,
    ticket_id: str,
    data: SendMessageInput,
    *,
    connection: str | None = None,
) -> Sent:
    """Store a message and publish it. Sends are group-committed (domain/batching.py):
    the ones that arrive while a batch is being written go together in the next."""
    body = chat.rules.text(data.message, missing="Message is required")
    attachments = chat.rules.attachments(data.attachments)
    request = _Send(actor, ticket_id, body, attachments, data.clientMessageId, connection)
    if chat.sends is None:
        chat.sends = GroupCommit(partial(_write_sends, chat))
    sent: Sent = await chat.sends.submit(request)
    return sent


async def _write_sends(chat: Chat, requests: Sequence[_Send]) -> list[Sent | Exception]:
    outcomes: list[Sent | Exception | None] = [None] * len(requests)
    try:
        async with chat.work() as work:
            await _store_sends(chat, work, requests, outcomes)
    except IntegrityError:
        # Another process stored one of these clientMessageIds since the check. The
        # batch stored nothing; each send it had accepted goes again alone (already
        # charged), and finds the stored message. Refusals stand.
        for i, request in enumerate(requests):
            if not isinstance(outcomes[i], Exception):
                outcomes[i] = await _alone(chat, request)
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(requests)  # every send was answered, stored or refused
    return done


async def _alone(chat: Chat, request: _Send) -> Sent | Exception:
    async def attempt() -> Sent:
        async with chat.work() as work:
            ticket = await access_ticket(
                work.repo, request.actor, request.ticket_id, for_update=True
            )
            sender = request.actor.on(ticket)
            if request.client_message_id is not None:
                earlier = await work.repo.message_by_client_id(ticket.id, request.client_message_id)
                if earlier is not None:
                    return Sent(earlier, ticket, duplicate=True)
            ensure_active(ticket)
            await work.repo.upsert_person(sender.person, now())
            message = await post_message(
                chat,
                work,
                ticket,
                sender,
                request.body,
                request.attachments,
                request.client_message_id,
                request.connection,
            )
            return Sent(message, ticket)

    try:
        return await chat.retrying(attempt)
    except ChatError as exc:
        return exc


async def _store_sends(
    chat: Chat, work: Work, requests: Sequence[_Send], outcomes: list[Sent | Exception | None]
) -> None:
    """One transaction for a batch of sends: a few statements for the whole batch
    instead of several per message. Each send is checked on its own, as if alone, in
    the order they came; one refused does not refuse the others. Fills `outcomes`."""
    for i, request in enumerate(requests):
        try:
            require_ticket_id(request.ticket_id)
        except ChatError as exc:
            outcomes[i] = exc
    wanted = [r.ticket_id for r, o in zip(requests, outcomes, strict=True) if o is None]
    found = await work.repo.tickets_for_update(wanted)
    for ticket_id in sorted(found):
        work.in_turn(ticket_id)  # locked above, in this order
    known = await work.repo.messages_by_client_ids(
        (r.ticket_id, r.client_message_id)
        for r in requests
        if r.client_message_id is not None and r.ticket_id in found
    )
    moment = now()
    posted: list[_Posted] = []
    for i, request in enumerate(requests):
        if outcomes[i] is not None:
            continue
        try:
            ticket = visible(found.get(request.ticket_id), request.actor)
            sender = request.actor.on(ticket)
            key = (ticket.id, request.client_message_id or "")
            if request.client_message_id is not None and key in known:
                outcomes[i] = Sent(known[key], ticket, duplicate=True)
                continue
            ensure_active(ticket)
            await count_message(chat, ticket, sender)
        except ChatError as exc:
            outcomes[i] = exc
            continue
        assigned = "assigned_to" in _advance(ticket, sender, moment)
        ticket.last_seq += 1
        message = _append(ticket, sender, request, moment)
        if request.client_message_id is not None:
            known[key] = message  # a repeat later in this batch answers with it
        posted.append(_Posted(request, sender, ticket, message, assigned))
        outcomes[i] = Sent(message, ticket)
    if posted:
        tickets = list({p.ticket.id: p.ticket for p in posted}.values())
        senders = list({p.sender.id: p.sender.person for p in posted}.values())
        await work.repo.upsert_people(senders, moment)
        await work.repo.save_ticket_states(tickets)
        await work.repo.insert_messages([p.message for p in posted])
        await work.repo.add_watchers(
            ((p.ticket.id, p.sender.id) for p in posted if p.sender.is_agent), moment
        )
        watchers = await work.repo.watchers_of([ticket.id for ticket in tickets])
        for p in posted:
            await _announce(
                chat,
                work,
                p.ticket,
                p.sender,
                p.message,
                watchers[p.ticket.id],
                p.request.connection,
                assigned=p.assigned,
                moment=moment,
            )


async def count_message(chat: Chat, ticket: Ticket, sender: Actor) -> None:
    """Charge a message that is about to be stored to its chat's quota (and an agent's
    reply to their admin actions). Refused sends and repeats are never charged."""
    uses = [(Quota.MESSAGES, (ticket.id,))]
    if sender.is_agent:
        uses.append((Quota.ADMIN, (sender.id,)))
    await chat.limits.hit_all(*uses)


def progress(ticket: Ticket, actor: Actor, moment: datetime) -> dict[str, object]:
    """The columns that change when this actor takes part in the chat; empty when none.

    Status follows the conversation: an agent (replying or joining) puts an open chat in
    progress and takes it if nobody has it, a user's message on a chat waiting for them
    puts it back in progress."""
    changes: dict[str, object] = {}
    if actor.is_agent:
        if ticket.status is Status.OPEN:
            changes["status"] = Status.IN_PROGRESS.value
        if ticket.assigned_to is None:
            changes.update(assigned_to=actor.id, assigned_at=moment)
    elif ticket.status is Status.WAITING_FOR_USER:
        changes["status"] = Status.IN_PROGRESS.value
    return changes


def _advance(ticket: Ticket, actor: Actor, moment: datetime) -> dict[str, object]:
    """`progress` applied to the ticket in memory, with its update time; returns the
    columns to write."""
    changes = progress(ticket, actor, moment)
    if "status" in changes:
        ticket.status = Status(str(changes["status"]))
    if "assigned_to" in changes:
        ticket.assigned_to = PersonRef(actor.id, actor.name, actor.person.email)
        ticket.assigned_at = moment
    ticket.updated_at = moment
    return {**changes, "updated_at": moment}


def _append(ticket: Ticket, actor: Actor, request: _Send, moment: datetime) -> Message:
    """The message, at the ticket's newest position (its last_seq, just taken)."""
    message = Message(
        id=new_id(),
        ticket_id=ticket.id,
        seq=ticket.last_seq,
        sender_id=actor.id,
        sender_name=actor.name,
        sender_model="Admin" if actor.is_agent else "DTUser",
        is_admin_reply=actor.is_agent,
        body=request.body,
        attachments=list(request.attachments),
        client_message_id=request.client_message_id,
        created_at=moment,
    )
    ticket.messages.append(message)
    return message


def new_message_event(
    ticket: Ticket, message: Message, watchers: Sequence[str], connection: str | None = None
) -> Event:
    """A message, to the ticket's user and the agents who follow it (not to the
    connection that sent it: it learns the outcome from its acknowledgement)."""
    return Event(
        "new_message",
        new_message_payload(ticket, message),
        Audience(users=(ticket.user.id,), agents=tuple(watchers), exclude_connection=connection),
    )


async def _announce(
    chat: Chat,
    work: Work,
    ticket: Ticket,
    sender: Actor,
    message: Message,
    watchers: Sequence[str],
    connection: str | None,
    *,
    assigned: bool,
    moment: datetime,
    tell_agents: bool = True,
) -> None:
    work.emit(new_message_event(ticket, message, watchers, connection))
    if tell_agents and not sender.is_agent:
        work.emit(
            Event("user_message", user_message_payload(ticket, message), Audience(all_agents=True))
        )
    if assigned:
        await announce_assignment(chat, work, ticket, sender, moment)


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
    """Store one message on an active ticket (already checked) and queue its events:
    the path of a chat's first message, and of a send that goes alone."""
    moment = now()
    changes = _advance(ticket, actor, moment)
    if actor.is_agent:
        await work.repo.add_watcher(ticket.id, actor.id, moment)
    # The update takes the position and locks the ticket's row (on PostgreSQL).
    ticket.last_seq = await work.repo.take_next_seq(ticket.id, **changes)
    work.in_turn(ticket.id)
    request = _Send(actor, ticket.id, body, attachments, client_message_id, connection)
    message = _append(ticket, actor, request, moment)
    await work.repo.insert_message(message)
    await _announce(
        chat,
        work,
        ticket,
        actor,
        message,
        await work.repo.watchers(ticket.id),
        connection,
        assigned="assigned_to" in changes,
        moment=moment,
        tell_agents=tell_agents,
    )
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
