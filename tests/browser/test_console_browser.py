"""The console in a real headless Chromium, against a real console process, a real worker and a
real SMTP sink (tests/browser/conftest.py): what a person does on each page, and what a hostile
company name or page title cannot do there."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from .conftest import Session, Stack, screenshot, sign_in

pytestmark = pytest.mark.slow

OpenSession = Callable[[str], Session]


def csrf_token(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def pending_ids(page: Page) -> list[str]:
    """The drafts the Drafts page offers to approve, oldest first."""
    page.goto("/drafts") if page.url.endswith("/drafts") is False else None
    return [
        str(item.get_attribute("data-draft"))
        for item in page.locator("[data-draft][data-state=pending]").all()
    ]


def draft(page: Page, draft_id: str) -> Locator:
    return page.locator(f"[data-draft='{draft_id}']")


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
