"""One console for the browser tests: a real console process, a real worker, a real SMTP sink,
the fake providers (serving two hostile companies) and one redis-server, started once per
session; a headless Chromium (Debian's, through Playwright) with a fresh context per test.

Today's run is done before the first test, so every test finds drafts; tests that approve or
reject take drafts of their own (`Stack.claim`), so they do not depend on each other's order.
`CONSOLE_SCREENSHOTS=1` rewrites docs/screenshots/ from the pages the tests end on; otherwise
the screenshots go to a temporary directory, so a test run leaves the tree as it was."""

import asyncio
import email
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, ViewportSize, sync_playwright
from playwright.sync_api import expect as playwright_expect
from redis.asyncio import Redis

from jobs.outreach.drafts import DraftBook, DraftRecord, DraftState
from settings import Settings
from tests.support.console_process import console_process, demo_users
from tests.support.fake_providers import FakeProviders
from tests.support.hostile import HOSTILE_PREFIX, hostile_companies
from tests.support.processes import ROOT, RedisServer, WorkerProcess, env_for
from tests.support.smtp_server import smtp_env
from worker.client import JobReport, QueueClient
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink
from worker.registry import DAILY_JOB, job_specs
from worker.runtime.deadletter import DeadLetters

ROLES = ("viewer", "approver", "operator")
SCREENSHOTS = ROOT / "docs" / "screenshots"
WAIT_MS = 10_000
VIEWPORT: ViewportSize = {"width": 1100, "height": 760}
# Few prospects, so today's run takes about a second, yet more drafts than the tests claim.
DAILY_LIMIT = 12

playwright_expect.set_options(timeout=WAIT_MS)
T = TypeVar("T")


@dataclass
class Stack:
    url: str
    passwords: dict[str, str]
    env: dict[str, str]  # the worker's and the CLI's environment
    mail: MailSink
    shots: Path
    _claimed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[Message]:
        """Every message the SMTP sink received, parsed."""
        directory = self.mail.handler.directory
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(directory.glob("*.eml"))]

    def sent_to(self, address: str) -> list[Message]:
        return [m for m in self.messages() if address.lower() in str(m["To"]).lower()]

    def claim(self) -> DraftRecord:
        """A pending draft no other test has taken (never a hostile company's: the stored
        script test reads those as they are)."""
        with self._lock:
            for record in drafts(self, "pending"):
                if record.id not in self._claimed and not record.id.startswith(HOSTILE_PREFIX):
                    self._claimed.add(record.id)
                    return record
        raise AssertionError("no pending draft left for this test")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: apt-get install chromium (dev.py test does)")
    base = tmp_path_factory.mktemp("console")
    passwords = {role: secrets.token_urlsafe(12) for role in ROLES}
    with (
        RedisServer() as redis,
        FakeProviders() as fake,
        MailSink(base / "mail") as mail,
    ):
        for company, page in hostile_companies(fake, Settings().icp):
            fake.serve_site(company, page)
        env = env_for(
            redis.url,
            **fake.env(),
            **smtp_env(mail),
            PW_WEB__ALLOW_PRIVATE="true",
            PW_DAILY_LIMIT=str(DAILY_LIMIT),
        )
        console_env = {
            **env,
            "PW_CONSOLE__USERS": demo_users(passwords),
            "PW_CONSOLE__SESSION_SECRET": secrets.token_urlsafe(32),
        }
        # Everything starts at once: today's run waits in the queue for the worker.
        today = ThreadPoolExecutor(1)
        finished = today.submit(asyncio.run, run_today(redis.url))
        with (
            WorkerProcess(
                env, base / "worker.log", settings="tests.support.loopback_sites.WorkerSettings"
            ) as worker,
            console_process(console_env, base / "console.log") as console,
        ):
            worker.wait_ready()
            console.wait_ready()
            report = finished.result(timeout=90)
            today.shutdown()
            assert report.state == "complete", report
            shots = SCREENSHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else base / "shots"
            shots.mkdir(parents=True, exist_ok=True)
            yield Stack(console.url, passwords, env, mail, shots)


async def run_today(redis_url: str, payload: dict[str, Any] | None = None) -> JobReport:
    """Enqueue a daily run and wait until every prospect job it fanned out has ended."""
    settings = Settings(REDIS_URL=redis_url)
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        job_id = await client.enqueue(DAILY_JOB, payload)
        return await client.wait(job_id, lambda _report: None, poll_s=0.05)
    finally:
        await client.close()


def run_backfill(stack: Stack) -> str:
    """Yesterday's run, as an explicit backfill (today's has run): its date once enqueued. The
    run is left to the worker; the caller watches it."""
    yesterday = (datetime.now(Settings().tz).date() - timedelta(days=1)).isoformat()

    async def enqueue() -> str:
        settings = Settings(REDIS_URL=stack.env["REDIS_URL"])
        client = await QueueClient.connect(settings, specs=job_specs(settings))
        try:
            await client.enqueue(DAILY_JOB, {"run_date": yesterday, "backfill": True})
        finally:
            await client.close()
        return yesterday

    return in_thread(enqueue())


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        yield launch(playwright)


def launch(playwright: Playwright) -> Browser:
    # The system's browser, never one Playwright would download.
    return playwright.chromium.launch(executable_path=shutil.which("chromium"))


Dialogs = list[str]


@dataclass
class Session:
    page: Page
    dialogs: Dialogs  # every alert/confirm that opened, by message


@pytest.fixture
def open_session(browser: Browser, stack: Stack) -> Iterator[Callable[[str], Session]]:
    """Sign in as a role in a browser context of its own (its own cookies)."""
    contexts = []

    def open_as(role: str) -> Session:
        context = browser.new_context(base_url=stack.url, viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        dialogs: Dialogs = []

        def opened(dialog: Dialog) -> None:
            # A stored script that ran would open a dialog: record it and close it.
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", opened)
        sign_in(page, stack, role)
        return Session(page, dialogs)

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Page, stack: Stack, role: str, password: str | None = None) -> None:
    page.goto("/signin")
    page.get_by_label("User name").fill(role)
    page.get_by_label("Password").fill(password or stack.passwords[role])
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, stack: Stack, name: str) -> Path:
    path = stack.shots / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def plant_dead_letter(stack: Stack, job_id: str) -> str:
    """A dead letter of a job that can be replayed (a cleanup that failed for good), as the
    runtime writes one; its entry id."""

    async def plant() -> str:
        redis = Redis.from_url(stack.env["REDIS_URL"])
        try:
            letters = DeadLetters(
                redis, WorkerKeys(), queue_name="arq:queue", job_expires_ms=60_000
            )
            return await letters.add(
                job_id=job_id,
                function="cleanup",
                kind="failed",
                error_type="TransientError",
                error="TransientError: the database was away",
                tries=5,
                payload={},
            )
        finally:
            await redis.aclose()

    return in_thread(plant())


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    # A loop of its own in a thread of its own: Playwright's sync API owns this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result(timeout=30)


def drafts(stack: Stack, state: DraftState | None = None) -> list[DraftRecord]:
    """The drafts as Redis holds them, oldest first."""

    async def find() -> list[DraftRecord]:
        redis = Redis.from_url(stack.env["REDIS_URL"])
        try:
            return await DraftBook(redis, WorkerKeys()).find(state)
        finally:
            await redis.aclose()

    return in_thread(find())
