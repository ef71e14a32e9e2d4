"""The console in a real headless Chromium, against a real console process, a real worker and a
real SMTP sink (tests/browser/conftest.py): what a person does on each page, and what a hostile
company name or page title cannot do there."""

import pytest
from playwright.sync_api import expect

from .conftest import Stack, screenshot, sign_in

pytestmark = pytest.mark.slow


def test_sign_in_refuses_a_wrong_password_and_takes_the_right_one(
    open_session, stack: Stack, browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, stack, "approver", password="not-the-password")  # noqa: S106
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        screenshot(page, stack, "signin")
        sign_in(page, stack, "approver")
        expect(page.get_by_role("heading", name="Today")).to_be_visible()
        expect(page.get_by_text("approver · approver")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # Signed out for good: a page sends the browser back to sign in.
        page.goto(f"{stack.url}/drafts")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()
