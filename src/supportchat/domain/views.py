"""How tickets, messages and events look on the wire, in the field names of the API document.

REST responses and Socket.IO payloads both come from here, so the two never drift apart.
"""

from __future__ import annotations

from typing import Any

from .clock import iso
from .records import Message, PersonRef, Ticket, TicketPage


def person_view(ref: PersonRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"_id": ref.id, "fullName": ref.full_name, "email": ref.email}


def message_view(message: Message) -> dict[str, Any]:
    view: dict[str, Any] = {
        "_id": message.id,
        "sender": message.sender_id,
        "senderName": message.sender_name,
        "senderModel": message.sender_model,
        "message": message.body,
        "isAdminReply": message.is_admin_reply,
        "timestamp": iso(message.created_at),
        "attachments": message.attachments,
        "seq": message.seq,
    }
    if message.client_message_id is not None:
        view["clientMessageId"] = message.client_message_id
    return view


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    return {
        "_id": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "priority": ticket.priority,
        "category": ticket.category,
        "isChat": ticket.is_chat,
        "createdAt": iso(ticket.created_at),
        "lastUpdated": iso(ticket.updated_at),
        "userId": person_view(ticket.user),
        "assignedTo": person_view(ticket.assigned_to),
        "assignedAt": iso(ticket.assigned_at),
        "resolvedAt": iso(ticket.resolved_at),
        "resolvedBy": person_view(ticket.resolved_by),
        "resolutionSummary": ticket.resolution_summary,
        "messages": [message_view(m) for m in ticket.messages],
    }


def pagination_view(found: TicketPage) -> dict[str, Any]:
    return {
        "currentPage": found.page,
        "totalPages": found.total_pages,
        "totalChats": found.total,
        "hasNextPage": found.page < found.total_pages,
        "hasPrevPage": found.page > 1,
        "limit": found.limit,
    }


def new_message_payload(ticket: Ticket, message: Message) -> dict[str, Any]:
    return {
        "messageId": message.id,
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        **message_view(message),
    }


def message_sent_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messageId": message.id,
        "ticketId": message.ticket_id,
        "timestamp": iso(message.created_at),
        "status": "sent",
        "seq": message.seq,
    }
    if message.client_message_id is not None:
        payload["clientMessageId"] = message.client_message_id
    return payload


def user_message_payload(ticket: Ticket, message: Message) -> dict[str, Any]:
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "userId": ticket.user.id,
        "userName": ticket.user.full_name,
        "userEmail": ticket.user.email,
        "messageId": message.id,
        "message": message.body,
        "attachments": message.attachments,
        "timestamp": iso(message.created_at),
        "seq": message.seq,
        "status": ticket.status.value,
    }


def new_chat_ticket_payload(ticket: Ticket, first: Message) -> dict[str, Any]:
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "subject": ticket.subject,
        "status": ticket.status.value,
        "userId": ticket.user.id,
        "userName": ticket.user.full_name,
        "userEmail": ticket.user.email,
        "message": first.body,
        "priority": ticket.priority,
        "category": ticket.category,
        "createdAt": iso(ticket.created_at),
    }


def joined_view(ticket: Ticket) -> dict[str, Any]:
    """What an agent gets back for joining a chat (REST join, `join_chat`)."""
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "assignedTo": ticket.assigned_to.id if ticket.assigned_to else None,
        "assignedAgent": person_view(ticket.assigned_to),
        "status": ticket.status.value,
        "userId": ticket.user.id,
        "userName": ticket.user.full_name,
        "userEmail": ticket.user.email,
        "messages": [message_view(m) for m in ticket.messages],
    }


def closed_view(ticket: Ticket, *, already: bool) -> dict[str, Any]:
    return {
        "ticketId": ticket.id,
        "ticketNumber": ticket.ticket_number,
        "status": ticket.status.value,
        "resolvedAt": iso(ticket.resolved_at),
        "resolvedBy": person_view(ticket.resolved_by),
        "resolutionSummary": ticket.resolution_summary,
        "alreadyClosed": already,
    }
