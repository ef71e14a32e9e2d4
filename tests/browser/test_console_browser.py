"""The console in a real headless Chromium, against a real console process, a real worker and a
real SMTP sink (tests/browser/conftest.py): what a person does on each page, and what a hostile
company name or page title cannot do there. The Today test comes first: it watches today's run,
which the first test needing drafts finishes."""

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from jobs.outreach.drafts import DraftRecord
from tests.support.hostile import HOSTILE_PREFIX, IMG_TITLE, SCRIPT_NAME
from worker.registry import PROSPECT_JOB

from .conftest import OpenSession, Stack, screenshot, sign_in

# The first test's time holds the session's start (processes, the browser): on a loaded machine
# more than the suite's 60 s.
# One xdist worker runs them all: the stack (Redis, worker, console, browser) is per session.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.xdist_group("browser")]


# --- the pages' parts ---------------------------------------------------------------------


def csrf_token(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def draft_item(page: Page, draft_id: str) -> Locator:
    """A draft on the Drafts page."""
    return page.locator("article.draft").filter(has_text=f"Draft {draft_id} ·")


def send_state(page: Page, draft_id: str) -> Locator:
    return draft_item(page, draft_id).locator(".send-state .state")


def drafts_page_with_a_claim(
    open_session: OpenSession, stack: Stack, role: str
) -> tuple[DraftRecord, Page]:
    """A draft of the test's own, and the Drafts page as `role` sees it."""
    chosen = stack.claim()
    page = open_session(role).page
    page.goto("/drafts")
    return chosen, page


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


# --- signing in, Today --------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_and_takes_the_right_one(
    browser: Browser, stack: Stack
) -> None:
    context = browser.new_context(base_url=stack.url)
    page = context.new_page()
    try:
        sign_in(page, "approver", "not-the-password")
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        screenshot(page, stack, "signin")
        sign_in(page, "approver", stack.passwords["approver"])
        expect(page.get_by_role("heading", name="Today")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # Signed out for good: a page sends the browser back to sign in.
        page.goto("/drafts")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()


def test_today_shows_the_run_moving_without_a_reload(
    open_session: OpenSession, stack: Stack
) -> None:
    viewer = open_session("viewer").page
    viewer.goto("/")
    live = viewer.locator("#today-live")
    # Fanned out, its prospects held by the pause.
    expect(live.get_by_role("heading", name="Run")).not_to_contain_text("complete")
    expect(live).to_contain_text(PROSPECT_JOB)  # the paused type
    done = live.locator(".card").filter(has_text="Prospects done").locator(".value")
    expect(done).to_have_text(re.compile(r"^0 / [1-9]\d*$"))
    total = done.inner_text().split(" / ")[1]
    # A reload would lose this mark: its survival means the page updated itself.
    viewer.evaluate("() => { window.sameDocument = true; }")
    operator = open_session("operator").page
    operator.goto("/controls")
    operator.get_by_role("button", name=f"Resume {PROSPECT_JOB}").click()
    expect(operator.get_by_role("status")).to_be_visible()
    expect(done).to_have_text(f"{total} / {total}")
    expect(live.get_by_role("heading", name="Run")).to_contain_text("complete")
    assert viewer.evaluate("() => window.sameDocument") is True
    screenshot(viewer, stack, "today")


# --- drafts -------------------------------------------------------------------------------


def test_approving_a_draft_sends_exactly_one_message(
    open_session: OpenSession, stack: Stack
) -> None:
    chosen, page = drafts_page_with_a_claim(open_session, stack, "approver")
    draft_item(page, chosen.id).get_by_role("button", name="Approve and send").click()
    # The send state moves on the page as the worker sends it.
    expect(send_state(page, chosen.id)).to_have_text("sent")
    # ... and so does the state in the draft's heading, without a reload.
    expect(page.locator(f"#draft-state-{chosen.id}")).to_have_text("sent")
    screenshot(page, stack, "drafts", top=draft_item(page, chosen.id))
    (message,) = stack.sent_to(chosen.to)
    assert message["Subject"] == chosen.subject


def test_an_edited_draft_is_sent_as_edited(open_session: OpenSession, stack: Stack) -> None:
    chosen, page = drafts_page_with_a_claim(open_session, stack, "approver")
    item = draft_item(page, chosen.id)
    item.get_by_text("Edit, then approve").click()
    item.get_by_label("Subject").fill("Edited: a shorter subject")
    item.get_by_label("Body").fill("Hi,\n\nEdited by a person before sending.\n\nAlex")
    item.get_by_role("button", name="Save and approve").click()
    expect(send_state(page, chosen.id)).to_have_text("sent")
    (message,) = stack.sent_to(chosen.to)
    assert message["Subject"] == "Edited: a shorter subject"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "Edited by a person before sending." in body.decode()


def test_a_rejected_draft_is_never_sent(open_session: OpenSession, stack: Stack) -> None:
    chosen, page = drafts_page_with_a_claim(open_session, stack, "approver")
    item = draft_item(page, chosen.id)
    item.get_by_label("reason for rejecting").fill("not a fit")
    item.get_by_role("button", name="Reject").click()
    expect(item.get_by_role("status")).to_contain_text("reject")
    (record,) = [d for d in stack.drafts() if d.id == chosen.id]
    assert record.state == "rejected"
    page.goto("/drafts")
    expect(draft_item(page, chosen.id)).to_have_count(0)  # no longer awaiting approval
    assert not stack.sent_to(chosen.to)


def test_two_approvals_of_one_draft_from_two_sessions_send_once(
    open_session: OpenSession, stack: Stack
) -> None:
    chosen = stack.claim()
    pages = [open_session(role).page for role in ("approver", "operator")]
    for page in pages:
        page.goto("/drafts")
        expect(draft_item(page, chosen.id)).to_be_visible()
    for page in pages:  # both in flight before either is answered
        post_in_page(
            page, "/drafts/approve", {"csrf_token": csrf_token(page), "draft_id": chosen.id}
        )
    statuses = [answer_in_page(page) for page in pages]
    assert 200 in statuses, statuses
    pages[0].goto("/drafts?state=all")
    # Sent already (its state in the heading), or followed there by the send-state line.
    sent = draft_item(pages[0], chosen.id).locator(".state").filter(has_text="sent")
    expect(sent.first).to_be_visible()
    assert len(stack.sent_to(chosen.to)) == 1


def test_a_viewer_sees_no_approve_button_and_a_hand_made_post_is_refused(
    open_session: OpenSession, stack: Stack
) -> None:
    chosen, page = drafts_page_with_a_claim(open_session, stack, "viewer")
    expect(draft_item(page, chosen.id)).to_be_visible()
    expect(page.get_by_role("button", name="Approve and send")).to_have_count(0)
    # What an approver's button sends, with the viewer's own valid CSRF token.
    refused = page.request.post(
        "/drafts/approve", form={"csrf_token": csrf_token(page), "draft_id": chosen.id}
    )
    assert refused.status == 403
    (record,) = [d for d in stack.drafts() if d.id == chosen.id]
    assert record.state == "pending"
    screenshot(page, stack, "drafts-viewer")


def test_stored_script_in_a_company_name_or_a_page_title_stays_text(
    open_session: OpenSession, stack: Stack
) -> None:
    stack.drafts()  # today's run done
    session = open_session("operator")
    page = session.page
    page.goto("/drafts")
    named = draft_item(page, f"{HOSTILE_PREFIX}name")
    titled = draft_item(page, f"{HOSTILE_PREFIX}title")
    expect(named.get_by_role("heading", level=2)).to_contain_text(SCRIPT_NAME)
    for item in (named, titled):
        item.get_by_text("Score, evidence and contact").click()
    expect(titled.get_by_text(f"Title: {IMG_TITLE}")).to_be_visible()
    # Parsed as text: no element came of either, and nothing ran.
    assert page.locator("main script, main img").count() == 0
    screenshot(page, stack, "stored-script", top=named)
    assert session.dialogs == []


# --- dead letters and controls ------------------------------------------------------------


def test_replaying_a_dead_letter_from_its_page(open_session: OpenSession, stack: Stack) -> None:
    entry = stack.plant_dead_letter("cleanup-browser-replay")
    session = open_session("operator")
    page = session.page
    page.goto("/dead-letters")
    expect(page.get_by_role("link", name=entry)).to_be_visible()
    page.get_by_label(f"tick {entry}").check()
    screenshot(page, stack, "dead-letters")
    page.get_by_role("button", name="Replay the ticked entries").click()
    expect(page.locator("#answer-dlq").get_by_role("status")).to_contain_text("replay")
    assert session.dialogs == ["confirm: Replay every ticked entry with fresh tries?"]
    page.goto("/dead-letters")
    expect(page.get_by_role("link", name=entry)).to_have_count(0)


def test_pause_and_resume_everything_from_controls(open_session: OpenSession, stack: Stack) -> None:
    page = open_session("operator").page
    page.goto("/controls")
    page.get_by_role("button", name="Pause everything").click()
    expect(page.locator("#answer-controls").get_by_role("status")).to_contain_text("pause")
    page.goto("/")
    paused = page.locator(".card").filter(has_text="Paused").locator(".value")
    expect(paused).to_have_text("the queue")
    page.goto("/controls")
    expect(page.get_by_role("heading", name="The queue")).to_contain_text("paused")
    screenshot(page, stack, "controls")
    page.get_by_role("button", name="Resume everything").click()
    expect(page.locator("#answer-controls").get_by_role("status")).to_contain_text("resume")
    page.goto("/")
    expect(paused).to_have_text("no")
