"""The web UI in a real browser: Debian's Chromium driven by Playwright, against a real
server serving the real build (web/, built by `make install`).

A user and an agent, each in a browser context of their own, go through a whole chat:
start, join, typing both ways, messages both ways, the user's network dropped while the
agent writes (and the missed messages arriving once it is back), and the close with its
summary. Then: a message made of markup is shown as text, the demo landing page, the
widget embedded in another site's page, a refused send offering a retry, and the views
on a phone-sized screen. Screenshots of both views go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, expect

from support import AGENT_ROLE, Person, ServerInfo, new_person
from support.browser import axe_or_skip, chromium, screenshot_path
from support.net import free_port
from support.server import running_server

# Generous: a CI machine with two cores runs the browser, the server and the test.
WAIT_MS = 15_000
PHONE = {"width": 375, "height": 667}
# Low enough for one test to reach, high enough for the others' chats (at most 6 each).
MESSAGES_PER_MINUTE = 8


@pytest.fixture(scope="module")
def host_port() -> int:
    """The port of the page that embeds the widget (another origin)."""
    return free_port()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, host_port: int) -> Iterator[ServerInfo]:
    env = {
        "SUPPORTCHAT_DEMO": "true",
        "SUPPORTCHAT_RATE_LIMIT_MESSAGES": f"{MESSAGES_PER_MINUTE}/minute",
        # The widget's host page is another origin: the API must let it in.
        "SUPPORTCHAT_CORS_ORIGINS": f"http://127.0.0.1:{host_port}",
    }
    with running_server("webui", tmp_path_factory.mktemp("webui"), env=env) as proc:
        assert proc.info is not None
        yield proc.info


@pytest.fixture(scope="module")
def browser(ui_server: ServerInfo) -> Iterator[Browser]:
    with chromium() as launched:
        expect.set_options(timeout=WAIT_MS)
        yield launched


class Browsing:
    """The browser contexts a test opens (each a separate person's browser) and what
    went wrong in their pages: a Content-Security-Policy violation or an uncaught error."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.problems: list[str] = []

    def open(self, url: str, viewport: dict[str, int] | None = None) -> Page:
        page = self.context(viewport).new_page()
        page.goto(url)
        return page

    def context(
        self, viewport: dict[str, int] | None = None, *, bypass_csp: bool = False
    ) -> BrowserContext:
        """A new browser context, closed after the test. ``bypass_csp``: its pages may run
        injected scripts (the policy is then not checked either)."""
        context = self.browser.new_context(
            viewport=viewport or {"width": 1280, "height": 800}, bypass_csp=bypass_csp
        )
        context.set_default_timeout(WAIT_MS)
        context.on("weberror", lambda error: self.problems.append(f"uncaught: {error.error}"))
        context.on("console", self._console)
        self.contexts.append(context)
        return context

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(f"CSP: {message.text}")


@pytest.fixture
def browsing(browser: Browser) -> Iterator[Browsing]:
    session = Browsing(browser)
    yield session
    for context in session.contexts:
        context.close()
    assert not session.problems, session.problems


def person(server: ServerInfo, *, agent: bool = False) -> Person:
    return new_person(server.secret, role=AGENT_ROLE if agent else None)


def connected(page: Page) -> None:
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")


def active_ticket(server: ServerInfo, user: Person) -> str:
    """The user's active chat, as the REST API knows it."""
    resp = httpx.get(f"{server.base_url}/api/chat/active", headers=user.auth_header, timeout=10)
    chats = resp.json()["data"]["activeChats"]
    assert len(chats) == 1, chats
    ticket_id: str = chats[0]["_id"]
    return ticket_id


def stored_texts(server: ServerInfo, user: Person) -> list[str]:
    """The texts of the user's active chat, as the server stored them."""
    ticket_id = active_ticket(server, user)
    resp = httpx.get(f"{server.base_url}/api/chat/{ticket_id}", headers=user.auth_header)
    return [m["message"] for m in resp.json()["data"]["ticket"]["messages"]]


def start_chat(page: Page, text: str, category: str = "technical_support") -> None:
    form = page.get_by_test_id("chat-start-form")
    form.get_by_test_id("category-select").select_option(category)
    form.get_by_test_id("priority-select").select_option("high")
    form.get_by_test_id("message-input").fill(text)
    form.get_by_test_id("send-button").click()


def say(page: Page, text: str) -> None:
    """Type into the composer and send with Enter, as a keyboard user does."""
    box = page.get_by_test_id("composer").get_by_test_id("message-input")
    box.fill(text)
    box.press("Enter")


def sent(page: Page, sender: str, text: str) -> None:
    """The message is shown once, from `sender`, and acknowledged."""
    bubble = page.get_by_test_id("message").filter(has_text=text)
    expect(bubble).to_have_count(1)
    expect(bubble).to_have_attribute("data-sender", sender)
    expect(bubble).to_have_attribute("data-status", "sent")


def open_ticket(agent: Page, ticket_id: str) -> None:
    row = agent.locator(f'[data-testid="ticket-row"][data-ticket-id="{ticket_id}"]')
    expect(row).to_be_visible()
    row.click()
    expect(agent.get_by_test_id("conversation")).to_have_attribute("data-ticket-id", ticket_id)


def test_a_whole_conversation_between_a_user_and_an_agent(
    ui_server: ServerInfo, browsing: Browsing
) -> None:
    base = ui_server.base_url
    user, agent, colleague = (
        person(ui_server),
        person(ui_server, agent=True),
        person(ui_server, agent=True),
    )
    connected(browsing.open(f"{base}/agent#token={colleague.token}"))
    desk = browsing.open(f"{base}/agent#token={agent.token}")
    connected(desk)
    # A colleague online before this dashboard opened is listed, by name, with their load.
    listed = desk.locator(f'[data-testid="online-agent"][data-agent-id="{colleague.id}"]')
    expect(listed).to_contain_text(colleague.name)
    expect(listed.get_by_test_id("agent-load")).to_have_text("0 chats")
    chat = browsing.open(f"{base}/chat#token={user.token}")
    connected(chat)
    # The token left the address bar once read.
    assert "token" not in chat.url and "token" not in desk.url

    start_chat(chat, "My invoice shows the wrong amount")
    sent(chat, "user", "My invoice shows the wrong amount")
    ticket_id = active_ticket(ui_server, user)

    # The new chat reaches the dashboard live, unread, with its priority.
    row = desk.locator(f'[data-testid="ticket-row"][data-ticket-id="{ticket_id}"]')
    expect(row).to_have_attribute("data-priority", "high")
    expect(row.get_by_test_id("unread-count")).to_be_visible()
    open_ticket(desk, ticket_id)
    expect(desk.get_by_test_id("message").filter(has_text="wrong amount")).to_have_count(1)
    desk.get_by_test_id("join-button").click()
    expect(chat.get_by_test_id("agent-joined-notice")).to_be_visible()
    expect(row.get_by_test_id("ticket-assignee")).to_have_text("You")  # this agent

    # Typing, both ways: shown while one side types, gone once it has sent.
    desk.get_by_test_id("composer").get_by_test_id("message-input").press_sequentially("Let me")
    expect(chat.get_by_test_id("typing-indicator")).to_be_visible()
    say(desk, "Let me check that invoice for you.")
    sent(desk, "agent", "Let me check that invoice for you.")
    expect(chat.get_by_test_id("message").filter(has_text="check that invoice")).to_have_attribute(
        "data-sender", "agent"
    )
    expect(chat.get_by_test_id("typing-indicator")).to_be_hidden()
    chat.get_by_test_id("composer").get_by_test_id("message-input").press_sequentially("Thanks")
    expect(desk.get_by_test_id("typing-indicator")).to_be_visible()
    say(chat, "Thanks, it is invoice 2024-117.")
    sent(chat, "user", "invoice 2024-117")
    expect(desk.get_by_test_id("message").filter(has_text="invoice 2024-117")).to_have_count(1)

    # The user's network drops; the agent writes twice; once back, the user has both,
    # once each, in order.
    chat.context.set_offline(True)
    expect(chat.get_by_test_id("connection-state")).not_to_have_attribute("data-state", "connected")
    say(desk, "I found the problem: a discount was not applied.")
    say(desk, "I have issued a corrected invoice.")
    sent(desk, "agent", "I have issued a corrected invoice.")
    chat.context.set_offline(False)
    connected(chat)
    missed = chat.get_by_test_id("message").filter(has_text="discount was not applied")
    expect(missed).to_have_count(1)
    expect(chat.get_by_test_id("message").filter(has_text="corrected invoice")).to_have_count(1)
    texts = chat.get_by_test_id("message").all_inner_texts()
    order = [
        next(i for i, t in enumerate(texts) if part in t) for part in ("discount", "corrected")
    ]
    assert order[0] < order[1], texts

    chat.screenshot(path=screenshot_path("customer-conversation"), full_page=True)
    desk.screenshot(path=screenshot_path("agent-conversation"), full_page=True)

    # The agent closes with a summary; the user sees that it is closed, and why.
    desk.get_by_test_id("close-button").click()
    desk.get_by_test_id("resolution-input").fill("Corrected invoice sent; discount applied.")
    desk.get_by_test_id("confirm-close").click()
    notice = chat.get_by_test_id("chat-closed-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Corrected invoice sent")
    expect(desk.get_by_test_id("conversation-status")).to_have_text("Resolved")
    chat.screenshot(path=screenshot_path("customer-closed"), full_page=True)


MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'


def test_markup_in_messages_is_shown_as_text(ui_server: ServerInfo, browsing: Browsing) -> None:
    base = ui_server.base_url
    user, agent = person(ui_server), person(ui_server, agent=True)
    chat = browsing.open(f"{base}/chat#token={user.token}")
    connected(chat)
    start_chat(chat, MARKUP)
    sent(chat, "user", "window.__pwned=2")
    say(chat, "see javascript:alert(1) and https://example.com/help?a=1 please")
    sent(chat, "user", "javascript:alert(1)")

    desk = browsing.open(f"{base}/agent#token={agent.token}")
    connected(desk)
    open_ticket(desk, active_ticket(ui_server, user))
    for page in (chat, desk):
        bubble = page.get_by_test_id("message").filter(has_text="window.__pwned=2")
        expect(bubble).to_contain_text(MARKUP)
        assert bubble.locator("img, script, b").count() == 0
        assert page.evaluate("window.__pwned") is None
        links = page.get_by_test_id("message").filter(has_text="javascript:").locator("a")
        expect(links).to_have_count(1)  # the https one only
        expect(links).to_have_attribute("href", "https://example.com/help?a=1")
        assert "noopener" in (links.get_attribute("rel") or "")


def test_the_demo_opens_both_views(ui_server: ServerInfo, browsing: Browsing) -> None:
    landing = browsing.open(f"{ui_server.base_url}/")
    with landing.expect_popup() as customer_tab:
        landing.get_by_test_id("demo-customer").click()
    customer = customer_tab.value
    connected(customer)
    expect(customer.get_by_test_id("chat-start-form")).to_be_visible()
    with landing.expect_popup() as agent_tab:
        landing.get_by_test_id("demo-agent").click()
    desk = agent_tab.value
    connected(desk)
    expect(desk.get_by_test_id("ticket-list")).to_be_visible()
    start_chat(customer, "Hello from the demo customer")
    expect(desk.get_by_test_id("ticket-row").filter(has_text="demo customer").first).to_be_visible()
    landing.screenshot(path=screenshot_path("landing"), full_page=True)


class _HostPage(http.server.BaseHTTPRequestHandler):
    """Another site's page that embeds the widget, as a customer's product would."""

    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def host_site(ui_server: ServerInfo, host_port: int) -> Iterator[type[_HostPage]]:
    handler = type("HostPage", (_HostPage,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", host_port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_widget_works_inside_another_sites_page(
    ui_server: ServerInfo,
    browsing: Browsing,
    host_site: type[_HostPage],
    host_port: int,
) -> None:
    user = person(ui_server)
    # The host's own styles must neither break the widget nor be broken by it.
    host_site.page = f"""<!doctype html><html><head><title>Acme</title>
<style>* {{ font-size: 40px !important; color: red; }} button {{ display: none; }}</style>
</head><body><h1 id="host-title">Acme dashboard</h1>
<script src="{ui_server.base_url}/widget.js"></script>
<script>SupportChat.init({{ token: "{user.token}", title: "Acme support" }});</script>
</body></html>""".encode()
    page = browsing.open(f"http://127.0.0.1:{host_port}/")
    page.get_by_test_id("widget-launcher").click()
    panel = page.get_by_test_id("widget-panel")
    expect(panel).to_be_visible()
    connected(page)
    start_chat(page, "Asked from the widget")
    sent(page, "user", "Asked from the widget")
    assert active_ticket(ui_server, user)
    expect(page.locator("#host-title")).to_have_css("color", "rgb(255, 0, 0)")
    page.screenshot(path=screenshot_path("widget-on-host-page"))
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


def test_a_refused_send_offers_a_retry(ui_server: ServerInfo, browsing: Browsing) -> None:
    user = person(ui_server)
    chat = browsing.open(f"{ui_server.base_url}/chat#token={user.token}")
    connected(chat)
    start_chat(chat, "message 0")
    sent(chat, "user", "message 0")
    # The chat's first message is not a send; the per-chat limit refuses the send after
    # MESSAGES_PER_MINUTE of them: shown failed, with a retry.
    over = MESSAGES_PER_MINUTE + 1
    for n in range(1, over + 1):
        say(chat, f"message {n}")
    last = chat.get_by_test_id("message").filter(has_text=f"message {over}")
    expect(last).to_have_attribute("data-status", "failed")
    expect(last.get_by_test_id("retry-button")).to_be_visible()
    for n in range(1, over):
        sent(chat, "user", f"message {n}")
    stored = stored_texts(ui_server, user)
    assert stored == [f"message {n}" for n in range(over)]


def test_phone_sized_screens(ui_server: ServerInfo, browsing: Browsing) -> None:
    base = ui_server.base_url
    user, agent = person(ui_server), person(ui_server, agent=True)
    chat = browsing.open(f"{base}/chat#token={user.token}", PHONE)
    connected(chat)
    start_chat(chat, "Asked from a phone")
    sent(chat, "user", "Asked from a phone")
    desk = browsing.open(f"{base}/agent#token={agent.token}", PHONE)
    connected(desk)
    open_ticket(desk, active_ticket(ui_server, user))
    # One pane at a time, with a way back to the list.
    expect(desk.get_by_test_id("ticket-list")).to_be_hidden()
    desk.get_by_test_id("back-button").click()
    expect(desk.get_by_test_id("ticket-list")).to_be_visible()
    for page, name in ((chat, "customer-phone"), (desk, "agent-phone")):
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: {width}px wide, sideways scrolling"
        page.screenshot(path=screenshot_path(name), full_page=True)


def test_keyboard_alone_starts_a_chat(ui_server: ServerInfo, browsing: Browsing) -> None:
    """Labelled controls, Tab from one to the next, Shift+Enter for a new line and Enter
    to send."""
    user = person(ui_server)
    chat = browsing.open(f"{ui_server.base_url}/chat#token={user.token}")
    connected(chat)
    chat.get_by_test_id("category-select").focus()
    for control in ("category-select", "priority-select", "message-input"):
        assert chat.get_by_test_id(control).evaluate(
            "el => !!(el.labels && el.labels.length) || !!el.getAttribute('aria-label')"
        ), f"{control} has no label"
    chat.keyboard.press("Tab")
    expect(chat.get_by_test_id("priority-select")).to_be_focused()
    chat.keyboard.press("Tab")
    box = chat.get_by_test_id("chat-start-form").get_by_test_id("message-input")
    expect(box).to_be_focused()
    chat.keyboard.type("First line")
    chat.keyboard.press("Shift+Enter")
    chat.keyboard.type("second line")
    chat.keyboard.press("Enter")
    sent(chat, "user", "second line")
    stored = stored_texts(ui_server, user)
    assert stored == ["First line\nsecond line"], stored


def test_pages_refuse_a_missing_or_bad_token(ui_server: ServerInfo, browsing: Browsing) -> None:
    """A page without a token only says it needs one (and, in demo mode, where the demo
    is): it offers no way to get one."""
    for path in ("/chat", "/agent"):
        page = browsing.open(f"{ui_server.base_url}{path}")
        expect(page.get_by_test_id("token-problem")).to_have_attribute("data-reason", "missing")
    # A token the server refuses: the page stops trying and says so.
    page = browsing.open(f"{ui_server.base_url}/chat#token=not-a-token")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "offline")


def closed_chats(server: ServerInfo, user: Person, agent: Person, count: int) -> list[str]:
    """`count` chats of `user`, each started and then closed by `agent` over REST."""
    ids = []
    with httpx.Client(base_url=server.base_url, timeout=10) as api:
        for n in range(count):
            started = api.post(
                "/api/chat/start", json={"message": f"old question {n}"}, headers=user.auth_header
            )
            assert started.status_code == 201, started.text
            ticket_id = started.json()["data"]["ticketId"]
            closed = api.post(
                f"/api/chat/admin/close/{ticket_id}",
                json={"resolutionSummary": f"answered {n}"},
                headers=agent.auth_header,
            )
            assert closed.status_code == 200, closed.text
            ids.append(ticket_id)
    return ids


def test_past_chats_page_by_page_and_read_only(ui_server: ServerInfo, browsing: Browsing) -> None:
    user, agent = person(ui_server), person(ui_server, agent=True)
    ids = closed_chats(ui_server, user, agent, 12)  # more than a page (10)
    chat = browsing.open(f"{ui_server.base_url}/chat#token={user.token}")
    connected(chat)
    chat.get_by_test_id("history-button").click()
    items = chat.get_by_test_id("history-list").get_by_test_id("history-item")
    expect(items).to_have_count(10)
    chat.get_by_test_id("history-more").click()
    expect(items).to_have_count(12)
    shown = {items.nth(i).get_attribute("data-ticket-id") for i in range(12)}
    assert shown == set(ids)

    chat.locator(f'[data-testid="history-item"][data-ticket-id="{ids[3]}"]').click()
    past = chat.get_by_test_id("past-chat")
    expect(past).to_have_attribute("data-ticket-id", ids[3])
    expect(past.get_by_test_id("message").filter(has_text="old question 3")).to_have_count(1)
    expect(past.get_by_test_id("chat-closed-notice")).to_contain_text("answered 3")
    expect(past.get_by_test_id("message-input")).to_have_count(0)


def test_the_dashboard_filters_by_status(ui_server: ServerInfo, browsing: Browsing) -> None:
    user, agent = person(ui_server), person(ui_server, agent=True)
    (closed,) = closed_chats(ui_server, user, agent, 1)
    desk = browsing.open(f"{ui_server.base_url}/agent#token={agent.token}")
    connected(desk)
    chat = browsing.open(f"{ui_server.base_url}/chat#token={user.token}")
    connected(chat)
    start_chat(chat, "A chat that is still open")
    active = active_ticket(ui_server, user)

    def row(ticket_id: str) -> Locator:
        return desk.locator(f'[data-testid="ticket-row"][data-ticket-id="{ticket_id}"]')

    expect(row(active)).to_have_attribute("data-status", "open")
    expect(row(closed)).to_have_count(0)
    desk.get_by_test_id("status-filter").select_option("resolved")
    expect(row(closed)).to_have_attribute("data-status", "resolved")
    expect(row(active)).to_have_count(0)
    desk.get_by_test_id("status-filter").select_option("open")
    expect(row(active)).to_be_visible()
    expect(row(closed)).to_have_count(0)


def test_alerts_stay_off_until_the_agent_turns_them_on(
    ui_server: ServerInfo, browsing: Browsing
) -> None:
    """Browsers let a page play sounds and show notifications only after a gesture: the
    dashboard asks when the agent clicks, and remembers the choice."""
    agent = person(ui_server, agent=True)
    desk = browsing.open(f"{ui_server.base_url}/agent#token={agent.token}")
    desk.context.grant_permissions(["notifications"], origin=ui_server.base_url)
    connected(desk)
    alerts = desk.get_by_test_id("enable-notifications")
    expect(alerts).to_have_attribute("aria-pressed", "false")
    alerts.click()
    expect(alerts).to_have_attribute("aria-pressed", "true")
    assert desk.evaluate("Notification.permission") == "granted"
    desk.reload()
    connected(desk)
    expect(desk.get_by_test_id("enable-notifications")).to_have_attribute("aria-pressed", "true")


def test_without_the_demo_the_landing_page_only_explains(
    server: ServerInfo, browsing: Browsing
) -> None:
    """conftest's server runs without SUPPORTCHAT_DEMO: no way to a token from the UI."""
    landing = browsing.open(f"{server.base_url}/")
    expect(landing.get_by_test_id("embed-snippet")).to_contain_text("SupportChat.init")
    expect(landing.get_by_test_id("demo-customer")).to_have_count(0)
    expect(landing.get_by_test_id("demo-agent")).to_have_count(0)


def accessibility_problems(page: Page) -> list[str]:
    """axe-core's WCAG 2 A and AA checks on the page as it is now: each violation with
    the elements it found."""
    page.add_script_tag(path=str(axe_or_skip()))
    result = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
    ]


def test_every_view_passes_an_accessibility_audit(
    ui_server: ServerInfo, browsing: Browsing
) -> None:
    """axe-core (tests/js) in each view, with content in it. Its script is injected, so
    these pages run without their Content-Security-Policy."""
    axe_or_skip()
    base = ui_server.base_url
    user, agent = person(ui_server), person(ui_server, agent=True)
    context = browsing.context(bypass_csp=True)
    found: dict[str, list[str]] = {}

    landing = context.new_page()
    landing.goto(f"{base}/")
    expect(landing.get_by_test_id("demo-customer")).to_be_visible()
    found["landing"] = accessibility_problems(landing)

    chat = context.new_page()
    chat.goto(f"{base}/chat#token={user.token}")
    connected(chat)
    found["start form"] = accessibility_problems(chat)
    start_chat(chat, "Can someone help me with https://example.com/order/17?")
    sent(chat, "user", "Can someone help")

    dashboard = browsing.context(bypass_csp=True).new_page()
    dashboard.goto(f"{base}/agent#token={agent.token}")
    connected(dashboard)
    open_ticket(dashboard, active_ticket(ui_server, user))
    dashboard.get_by_test_id("join-button").click()
    expect(chat.get_by_test_id("agent-joined-notice")).to_be_visible()
    say(dashboard, "Yes, I am looking at order 17 now.")
    sent(dashboard, "agent", "order 17 now")
    found["dashboard"] = accessibility_problems(dashboard)
    expect(chat.get_by_test_id("message").filter(has_text="order 17 now")).to_be_visible()
    found["conversation"] = accessibility_problems(chat)
    chat.get_by_test_id("history-button").click()
    expect(chat.get_by_test_id("history-list")).to_be_visible()
    found["past chats"] = accessibility_problems(chat)
    dashboard.get_by_test_id("close-button").click()
    expect(dashboard.get_by_test_id("resolution-input")).to_be_visible()
    found["close dialog"] = accessibility_problems(dashboard)

    problems = {view: found[view] for view in found if found[view]}
    assert not problems, problems
