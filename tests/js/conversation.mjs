// One full support conversation driven by the official socket.io-client, connecting
// exactly as the shipped web client does: polling first, then the upgrade to WebSocket,
// the role in the query string (userType=dtuser / userType=admin), the token in auth.
//
//   node conversation.mjs <serverUrl> <userToken> <agentToken>
//   (or CHAT_SERVER_URL, CHAT_USER_TOKEN, CHAT_AGENT_TOKEN in the environment;
//   CHAT_TIMEOUT_MS replaces the overall 15 s limit)
//
// Prints one JSON summary on stdout ({"ok": true, ...} or {"ok": false, "error": ...}).
// Exit status: 0 when every step checked out, 1 on a failed check, 2 on the overall
// timeout, 64 on bad usage. Run by tests/test_js_client.py.

import { io } from "socket.io-client";

// The whole conversation must finish within this (CHAT_TIMEOUT_MS overrides it, for tests).
const OVERALL_TIMEOUT_MS = Number(process.env.CHAT_TIMEOUT_MS) || 15_000;
const STEP_TIMEOUT_MS = 5_000;
const OBJECT_ID = /^[0-9a-f]{24}$/;
const TICKET_NUMBER = /^TKT-\d{4}-\d{6}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const url = process.argv[2] ?? process.env.CHAT_SERVER_URL;
const userToken = process.argv[3] ?? process.env.CHAT_USER_TOKEN;
const agentToken = process.argv[4] ?? process.env.CHAT_AGENT_TOKEN;
if (!url || !userToken || !agentToken) {
  console.error("usage: node conversation.mjs <serverUrl> <userToken> <agentToken>");
  process.exit(64);
}

const summary = { ok: false, url, steps: [], transports: {}, messages: [] };
const sockets = [];

class CheckFailed extends Error {}

function check(condition, what, data) {
  if (!condition) {
    throw new CheckFailed(`${what}; got ${JSON.stringify(data)}`);
  }
}

function step(name, detail = {}) {
  summary.steps.push({ step: name, ...detail });
}

// The JWT's claims, read (not verified) to know whom the server should name.
function claims(token) {
  const payload = token.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
}

function idOf(token) {
  const c = claims(token);
  return String(c.userId ?? c.sub ?? c.id);
}

// Records every event a socket receives, so a wait never misses one that arrived
// before it started; waitFor consumes the first unconsumed match.
class Recorder {
  constructor(name, socket) {
    this.name = name;
    this.socket = socket;
    this.events = [];
    this.waiters = new Set();
    socket.onAny((event, ...args) => {
      this.events.push({ event, data: args[0], consumed: false });
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  find(event, predicate) {
    return this.events.find((r) => !r.consumed && r.event === event && predicate(r.data));
  }

  waitFor(event, predicate = () => true, timeoutMs = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const found = this.find(event, predicate);
        if (!found) return false;
        found.consumed = true;
        this.waiters.delete(attempt);
        clearTimeout(timer);
        resolve(found.data);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(attempt);
        const pending = this.events.filter((r) => !r.consumed).map((r) => r.event);
        reject(
          new CheckFailed(
            `${this.name}: no '${event}' within ${timeoutMs} ms (unconsumed: ${pending.join(", ") || "none"})`,
          ),
        );
      }, timeoutMs);
      if (!attempt()) this.waiters.add(attempt);
    });
  }
}

function ofTicket(ticketId, extra = () => true) {
  return (d) => d !== null && typeof d === "object" && d.ticketId === ticketId && extra(d);
}

// Connects like the shipped web client and resolves once the socket is connected and
// the transport has been upgraded from polling to WebSocket.
function connect(name, token, userType) {
  const socket = io(url, {
    transports: ["polling", "websocket"],
    query: { userType },
    auth: { token },
    reconnection: false,
    forceNew: true,
  });
  sockets.push(socket);
  const recorder = new Recorder(name, socket);
  const seen = { initial: null, upgradedTo: null };
  socket.io.on("open", () => {
    seen.initial = socket.io.engine.transport.name;
    socket.io.engine.on("upgrade", (transport) => {
      seen.upgradedTo = transport.name;
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new CheckFailed(`${name}: not connected and upgraded within ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
    socket.on("connect_error", (err) => {
      clearTimeout(timer);
      reject(new CheckFailed(`${name}: connect_error ${err.message} ${JSON.stringify(err.data)}`));
    });
    socket.on("connect", () => {
      const poll = setInterval(() => {
        if (socket.io.engine.transport.name !== "websocket") return;
        clearInterval(poll);
        clearTimeout(timer);
        const t = {
          initial: seen.initial,
          upgradedTo: seen.upgradedTo,
          final: socket.io.engine.transport.name,
        };
        summary.transports[name] = t;
        if (t.initial !== "polling" || t.upgradedTo !== "websocket") {
          reject(new CheckFailed(`${name}: not polling then upgraded: ${JSON.stringify(t)}`));
        } else {
          resolve(recorder);
        }
      }, 20);
    });
  });
}

// emitWithAck, bounded: the server acknowledges every event it handles.
async function call(recorder, event, data) {
  const ack = await recorder.socket.timeout(STEP_TIMEOUT_MS).emitWithAck(event, data);
  check(ack && ack.success === true, `${recorder.name}: ack of '${event}' is not a success`, ack);
  return ack.data;
}

async function conversation() {
  const userId = idOf(userToken);
  const agentId = idOf(agentToken);
  const userName = claims(userToken).fullName;
  const agentName = claims(agentToken).fullName;

  const user = await connect("user", userToken, "dtuser");
  const agent = await connect("agent", agentToken, "admin");
  step("connected", { transports: { ...summary.transports } });

  // 1. The user opens a chat over the socket; every agent hears of it.
  const opening = "Hello from the JavaScript client, I need help with my account";
  const startAck = await call(user, "start_chat", {
    message: opening,
    category: "account_support",
    priority: "medium",
  });
  const started = await user.waitFor("chat_started");
  const ticketId = started.ticketId;
  check(OBJECT_ID.test(ticketId ?? ""), "chat_started.ticketId is not an ObjectId", started);
  check(TICKET_NUMBER.test(started.ticketNumber ?? ""), "chat_started.ticketNumber", started);
  check(started.status === "open", "chat_started.status is not open", started);
  check(started.isExisting === false, "chat_started.isExisting is not false", started);
  check(
    Array.isArray(started.messages) &&
      started.messages.length === 1 &&
      started.messages[0].message === opening &&
      started.messages[0].senderModel === "DTUser" &&
      started.messages[0].isAdminReply === false,
    "chat_started.messages is not the opening message",
    started.messages,
  );
  check(startAck.ticketId === ticketId, "start_chat ack names another ticket", startAck);
  summary.ticketId = ticketId;
  summary.ticketNumber = started.ticketNumber;
  summary.messages.push({ from: "user", message: opening, seq: started.messages[0].seq });
  step("chat_started", { ticketNumber: started.ticketNumber, status: started.status });

  const announced = await agent.waitFor("new_chat_ticket", ofTicket(ticketId));
  check(announced.ticketNumber === started.ticketNumber, "new_chat_ticket.ticketNumber", announced);
  check(announced.message === opening, "new_chat_ticket.message", announced);
  check(announced.category === "account_support", "new_chat_ticket.category", announced);
  check(announced.priority === "medium", "new_chat_ticket.priority", announced);
  check(announced.userName === userName, "new_chat_ticket.userName", announced);
  step("new_chat_ticket");

  // 2. The agent joins the chat; the user is told.
  await call(agent, "join_ticket", { ticketId });
  const joined = await agent.waitFor("ticket_joined", ofTicket(ticketId));
  check(joined.status === "in_progress", "ticket_joined.status is not in_progress", joined);
  check(joined.assignedTo === agentId, "ticket_joined.assignedTo is not the agent", joined);
  check(joined.userName === userName, "ticket_joined.userName", joined);
  check(joined.messages?.length === 1, "ticket_joined.messages", joined);
  step("ticket_joined", { status: joined.status, assignedTo: joined.assignedTo });

  const agentJoined = await user.waitFor("agent_joined", ofTicket(ticketId));
  check(agentJoined.agentId === agentId, "agent_joined.agentId", agentJoined);
  check(agentJoined.agentName === agentName, "agent_joined.agentName", agentJoined);
  check(ISO_MS.test(agentJoined.joinedAt ?? ""), "agent_joined.joinedAt", agentJoined);
  step("agent_joined");

  // 3. The user writes; the agent gets it in the chat and in the queue view.
  const question = "My password reset link does not work";
  const sent = await call(user, "send_message", { ticketId, message: question });
  check(OBJECT_ID.test(sent.messageId ?? ""), "send_message ack.messageId", sent);
  const sentEvent = await user.waitFor("message_sent", (d) => d?.messageId === sent.messageId);
  check(sentEvent.status === "sent", "message_sent.status", sentEvent);
  const atAgent = await agent.waitFor("new_message", ofTicket(ticketId, (d) => d.message === question));
  check(atAgent.messageId === sent.messageId, "agent new_message.messageId", atAgent);
  check(atAgent.isAdminReply === false, "agent new_message.isAdminReply", atAgent);
  check(atAgent.senderModel === "DTUser", "agent new_message.senderModel", atAgent);
  check(atAgent.sender === userId, "agent new_message.sender", atAgent);
  const queued = await agent.waitFor("user_message", ofTicket(ticketId, (d) => d.message === question));
  check(queued.userName === userName, "user_message.userName", queued);
  check(queued.messageId === sent.messageId, "user_message.messageId", queued);
  summary.messages.push({ from: "user", message: question, seq: atAgent.seq });
  step("user_message");

  // 4. The agent answers; the user gets it as an agent reply.
  const answer = "I can help. Which email address do you use?";
  const replied = await call(agent, "admin_send_message", { ticketId, message: answer });
  const atUser = await user.waitFor("new_message", ofTicket(ticketId, (d) => d.message === answer));
  check(atUser.messageId === replied.messageId, "user new_message.messageId", atUser);
  check(atUser.isAdminReply === true, "user new_message.isAdminReply", atUser);
  check(atUser.senderModel === "Admin", "user new_message.senderModel", atUser);
  check(atUser.sender === agentId, "user new_message.sender", atUser);
  check(atUser.senderName === agentName, "user new_message.senderName", atUser);
  check(ISO_MS.test(atUser.timestamp ?? ""), "user new_message.timestamp", atUser);
  check(atUser.seq > summary.messages.at(-1).seq, "user new_message.seq is not after the last", atUser);
  summary.messages.push({ from: "agent", message: answer, seq: atUser.seq });
  step("admin_reply");

  // 5. A second tab (or a reconnect) of the user: told of the active chat on connect,
  //    it rejoins the ticket and gets what came after the opening message.
  const tab = await connect("userTab", userToken, "dtuser");
  const active = await tab.waitFor("active_tickets");
  check(
    Array.isArray(active.tickets) && active.tickets.some((t) => t._id === ticketId),
    "active_tickets does not name the chat",
    active,
  );
  await call(tab, "rejoin_ticket", { ticketId, lastMessageId: started.messages[0]._id });
  const rejoined = await tab.waitFor("ticket_rejoined", ofTicket(ticketId));
  check(rejoined.status === "in_progress", "ticket_rejoined.status", rejoined);
  check(rejoined.messages?.length === 3, "ticket_rejoined.messages", rejoined);
  const replayed = [
    await tab.waitFor("new_message", ofTicket(ticketId)),
    await tab.waitFor("new_message", ofTicket(ticketId)),
  ].map((m) => [m.message, m.seq]);
  check(
    JSON.stringify(replayed) ===
      JSON.stringify(summary.messages.slice(1).map((m) => [m.message, m.seq])),
    "rejoin_ticket did not replay the missed messages in seq order",
    replayed,
  );
  tab.socket.disconnect();
  step("rejoin_ticket", { replayed: replayed.length });

  // 6. Typing, both ways.
  await call(user, "user_typing", { ticketId, isTyping: true });
  const userTyping = await agent.waitFor("user_typing", ofTicket(ticketId));
  check(userTyping.isTyping === true, "user_typing.isTyping", userTyping);
  check(userTyping.userName === userName, "user_typing.userName", userTyping);
  await call(agent, "admin_typing", { ticketId, isTyping: true });
  const agentTyping = await user.waitFor("agent_typing", ofTicket(ticketId));
  check(agentTyping.isTyping === true, "agent_typing.isTyping", agentTyping);
  check(agentTyping.agentName === agentName, "agent_typing.agentName", agentTyping);
  await call(agent, "admin_typing", { ticketId, isTyping: false });
  const stopped = await user.waitFor("agent_typing", ofTicket(ticketId));
  check(stopped.isTyping === false, "agent_typing.isTyping (stop)", stopped);
  step("typing");

  // 7. The agent closes the chat; the user and the agents are told.
  const resolution = "Password reset link re-sent";
  await call(agent, "admin_close_chat", { ticketId, resolutionSummary: resolution });
  for (const [who, recorder] of [
    ["user", user],
    ["agent", agent],
  ]) {
    const closed = await recorder.waitFor("chat_closed", ofTicket(ticketId));
    check(closed.resolutionSummary === resolution, `${who} chat_closed.resolutionSummary`, closed);
    check(closed.closedBy === agentName, `${who} chat_closed.closedBy`, closed);
    check(ISO_MS.test(closed.closedAt ?? ""), `${who} chat_closed.closedAt`, closed);
  }
  step("chat_closed");

  // 8. What the server stored, over REST as the page would read it.
  const resp = await fetch(new URL(`/api/chat/${ticketId}`, url), {
    headers: { Authorization: `Bearer ${userToken}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const body = await resp.json();
  check(resp.status === 200 && body.success === true, "GET /api/chat/:ticketId", body);
  const ticket = body.data.ticket;
  check(ticket.status === "resolved", "stored status is not resolved", ticket.status);
  check(ticket.resolutionSummary === resolution, "stored resolutionSummary", ticket);
  check(
    JSON.stringify(ticket.messages.map((m) => m.message)) ===
      JSON.stringify(summary.messages.map((m) => m.message)),
    "stored messages differ from the conversation",
    ticket.messages,
  );
  summary.finalStatus = ticket.status;
  step("stored");
}

function shutdown(code) {
  for (const socket of sockets) socket.disconnect();
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(code));
}

const overall = setTimeout(() => {
  summary.error = `timed out after ${OVERALL_TIMEOUT_MS} ms`;
  console.error(summary.error);
  shutdown(2);
}, OVERALL_TIMEOUT_MS);

conversation().then(
  () => {
    clearTimeout(overall);
    summary.ok = true;
    shutdown(0);
  },
  (err) => {
    clearTimeout(overall);
    summary.error = err instanceof CheckFailed ? err.message : String(err?.stack ?? err);
    console.error(summary.error);
    shutdown(1);
  },
);
