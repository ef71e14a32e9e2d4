"""The console in a real headless Chromium, against a real console process, a real worker and a
real SMTP sink (tests/browser/conftest.py): what a person does on each page, and what a hostile
company name or page title cannot do there."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.hostile import HOSTILE_PREFIX, IMG_TITLE, SCRIPT_NAME

from .conftest import (
    Session,
    Stack,
    drafts,
    plant_dead_letter,
    run_backfill,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.slow

OpenSession = Callable[[str], Session]


# --- the pages' parts ---------------------------------------------------------------------


def csrf_token(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def draft_item(page: Page, draft_id: str) -> Locator:
    """A draft on the Drafts page: the element that carries its id."""
    return page.locator(f"[data-draft='{draft_id}']")


def approve_form(page: Page, draft_id: str) -> Locator:
    return draft_item(page, draft_id).locator("form[action$='/approve']")


def post_in_page(page: Page, path: str, fields: dict[str, str]) -> None:
    """Start a form POST from the page's own session without waiting for its answer, so two
    pages' requests are in flight together; `answer_in_page` waits for the status."""
    page.evaluate(
        """([path, fields]) => {
            window.__answer = fetch(path, {method: "POST", body: new URLSearchParams(fields)})
                .then((response) => response.status);
        }""",
        [path, fields],
    )


def answer_in_page(page: Page) -> int:
    status = page.evaluate("() => window.__answer")
    assert isinstance(status, int)
    return status


# --- signing in ---------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_and_takes_the_right_one(
    browser: Browser, stack: Stack
) -> None:
    context = browser.new_context(base_url=stack.url)
    page = context.new_page()
    try:
        sign_in(page, stack, "approver", password="not-the-password")  # noqa: S106
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        screenshot(page, stack, "signin")
        sign_in(page, stack, "approver")
        expect(page.get_by_role("heading", name="Today")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # Signed out for good: a page sends the browser back to sign in.
        page.goto("/drafts")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()


# --- Today --------------------------------------------------------------------------------


def test_today_shows_a_run_moving_without_a_reload(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("viewer").page
    page.goto("/")
    expect(page.get_by_role("heading", name="Today")).to_be_visible()
    # Marks this document: a reload would lose it, so its survival means live updates.
    page.evaluate("() => { window.__same_document = true; }")
    run_date = run_backfill(stack)
    run = page.locator(f"[data-run='{run_date}']")
    expect(run).to_contain_text("complete")
    assert page.evaluate("() => window.__same_document") is True
    screenshot(page, stack, "today")


# --- drafts -------------------------------------------------------------------------------


def test_approving_a_draft_sends_exactly_one_message(
    open_session: OpenSession, stack: Stack
) -> None:
    page = open_session("approver").page
    chosen = stack.claim()
    page.goto("/drafts")
    approve_form(page, chosen.id).get_by_role("button", name="Approve").click()
    # The draft's send state moves on the page as the worker sends it.
    expect(draft_item(page, chosen.id)).to_contain_text("sent")
    screenshot(page, stack, "drafts")
    sent = stack.sent_to(chosen.to)
    assert len(sent) == 1
    assert sent[0]["Subject"] == chosen.subject


def test_an_edited_draft_is_sent_as_edited(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("approver").page
    chosen = stack.claim()
    page.goto("/drafts")
    form = approve_form(page, chosen.id)
    form.get_by_label("Subject").fill("Edited: a shorter subject")
    form.get_by_label("Body").fill("Hi,\n\nEdited by a person before sending.\n\nAlex")
    form.get_by_role("button", name="Approve").click()
    expect(draft_item(page, chosen.id)).to_contain_text("sent")
    (message,) = stack.sent_to(chosen.to)
    assert message["Subject"] == "Edited: a shorter subject"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "Edited by a person before sending." in body.decode()


def test_a_rejected_draft_is_never_sent(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("approver").page
    chosen = stack.claim()
    page.goto("/drafts")
    item = draft_item(page, chosen.id)
    reject = item.locator("form[action$='/reject']")
    reject.get_by_label("Reason").fill("not a fit")
    reject.get_by_role("button", name="Reject").click()
    expect(draft_item(page, chosen.id)).to_contain_text("rejected")
    (record,) = [d for d in drafts(stack) if d.id == chosen.id]
    assert record.state == "rejected"
    assert not stack.sent_to(chosen.to)


def test_two_approvals_of_one_draft_from_two_sessions_send_once(
    open_session: OpenSession, stack: Stack
) -> None:
    chosen = stack.claim()
    pages = [open_session(role).page for role in ("approver", "operator")]
    for page in pages:
        page.goto("/drafts")
        expect(approve_form(page, chosen.id)).to_be_visible()
    action = approve_form(pages[0], chosen.id).get_attribute("action")
    assert action
    for page in pages:  # both in flight before either is answered
        post_in_page(page, action, {"csrf_token": csrf_token(page)})
    statuses = sorted(answer_in_page(page) for page in pages)
    assert statuses[0] == 200, statuses  # one approval queued the send; the other said so
    pages[0].goto("/drafts")
    expect(draft_item(pages[0], chosen.id)).to_contain_text("sent")
    assert len(stack.sent_to(chosen.to)) == 1


def test_a_viewer_sees_no_approve_button_and_a_hand_made_post_is_refused(
    open_session: OpenSession, stack: Stack
) -> None:
    page = open_session("viewer").page
    chosen = stack.claim()
    page.goto("/drafts")
    expect(draft_item(page, chosen.id)).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    # The request an approver's button would send, with the viewer's own valid CSRF token.
    refused = page.request.post(
        f"/drafts/{chosen.id}/approve", form={"csrf_token": csrf_token(page)}
    )
    assert refused.status == 403
    (record,) = [d for d in drafts(stack) if d.id == chosen.id]
    assert record.state == "pending"


def test_stored_script_in_a_company_name_or_page_title_stays_text(
    open_session: OpenSession, stack: Stack
) -> None:
    session = open_session("operator")
    page = session.page
    page.goto("/drafts")
    for draft_id in (f"{HOSTILE_PREFIX}name", f"{HOSTILE_PREFIX}title"):
        expect(draft_item(page, draft_id)).to_be_visible()
    expect(page.get_by_text(SCRIPT_NAME).first).to_be_visible()
    expect(page.get_by_text(IMG_TITLE).first).to_be_visible()
    # Parsed as text: no element came of either.
    assert page.locator("main script").count() == 0
    assert page.locator("img[src=x]").count() == 0
    page.goto(f"/drafts/{HOSTILE_PREFIX}title")
    expect(page.get_by_text(IMG_TITLE).first).to_be_visible()
    assert page.locator("img[src=x]").count() == 0
    assert session.dialogs == []
    screenshot(page, stack, "stored-script")


# --- dead letters and controls ------------------------------------------------------------


def test_replaying_a_dead_letter_from_its_page(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("operator").page
    entry = plant_dead_letter(stack, "cleanup-browser-replay")
    page.goto("/dead-letters")
    row = page.locator(f"[data-entry='{entry}']")
    expect(row).to_contain_text("TransientError")
    screenshot(page, stack, "dead-letters")
    row.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("replayed")
    page.goto("/dead-letters")
    expect(page.locator(f"[data-entry='{entry}']")).to_have_count(0)


def test_pause_and_resume_from_controls(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("operator").page
    page.goto("/controls")
    page.get_by_role("button", name="Pause all").click()
    expect(page.get_by_role("status")).to_contain_text("paused")
    page.goto("/")
    expect(page.get_by_text("paused").first).to_be_visible()
    page.goto("/controls")
    screenshot(page, stack, "controls")
    page.get_by_role("button", name="Resume all").click()
    expect(page.get_by_role("status")).to_contain_text("resumed")
