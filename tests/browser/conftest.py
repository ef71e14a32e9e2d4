"""One console for the browser tests: a real console process, a real worker, a real SMTP sink,
the fake providers (serving two hostile companies) and one redis-server, started once for the
module; a headless Chromium (Debian's, through Playwright) with a fresh context per test. The
module's end stops Playwright's own event loop, which the asyncio tests that a parallel worker
runs next could not start beside.

Today's run is enqueued at the start with its prospect jobs paused, so the Today test (first in
the module) watches it move when they are resumed; a test that needs drafts resumes them and
waits for the run (`Stack.claim`), and takes drafts of its own, so the draft tests do not depend
on each other's order. `CONSOLE_SCREENSHOTS=1` rewrites docs/screenshots/ from the pages the
tests end on; otherwise the screenshots go to a temporary directory, so a run leaves the tree as
it was."""

import asyncio
import email
import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import (
    Browser,
    Dialog,
    Locator,
    Page,
    StorageState,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import expect as playwright_expect
from redis.asyncio import Redis

from jobs.outreach.drafts import DraftBook, DraftRecord, DraftState
from settings import Settings
from tests.support.console_process import console_process, demo_users
from tests.support.fake_providers import FakeProviders
from tests.support.hostile import HOSTILE_PREFIX, hostile_companies
from tests.support.processes import ROOT, RedisServer, WorkerProcess, env_for
from tests.support.smtp_server import smtp_env
from worker.client import QueueClient
from worker.keys import WorkerKeys
from worker.local.mailsink import MailSink
from worker.registry import DAILY_JOB, PROSPECT_JOB, job_specs
from worker.runtime.deadletter import DeadLetters
from worker.scheduling.pause import PauseSwitch

ROLES = ("viewer", "approver", "operator")
SCREENSHOTS = ROOT / "docs" / "screenshots"
# How long a condition may take to show; only a failing test waits it out (a loaded machine
# has been seen to take several seconds for a send to show).
WAIT_MS = 20_000
VIEWPORT: ViewportSize = {"width": 1100, "height": 760}
# Few prospects, so today's run takes about a second, yet more drafts than the tests claim;
# no headroom, so every prospect drafted is queued (with headroom, which of them the quota
# takes is the order they end in, and the hostile ones were left out in one run).
DAILY_LIMIT = 14
START_TIMEOUT_S = 120

playwright_expect.set_options(timeout=WAIT_MS)
T = TypeVar("T")
# A cleanup job that failed for good: replayable, as the runtime writes one.
REPLAYABLE_ENTRY: dict[str, Any] = {
    "function": "cleanup",
    "kind": "failed",
    "error_type": "TransientError",
    "error": "TransientError: the database was away",
    "tries": 5,
    "payload": {},
}


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    # A loop of its own in a thread of its own: Playwright's sync API owns this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result(timeout=60)


@dataclass
class Stack:
    url: str
    passwords: dict[str, str]
    redis_url: str
    mail: MailSink
    shots: Path
    today_job: str
    _claimed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ready: bool = False

    def messages(self) -> list[Message]:
        """Every message the SMTP sink received, parsed."""
        directory = self.mail.handler.directory
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(directory.glob("*.eml"))]

    def sent_to(self, address: str) -> list[Message]:
        return [m for m in self.messages() if address.lower() in str(m["To"]).lower()]

    def drafts(self, state: DraftState | None = None) -> list[DraftRecord]:
        """The drafts as Redis holds them, oldest first."""
        with self._lock:
            self._finish_today()
        return in_thread(self._redis(lambda redis: DraftBook(redis, WorkerKeys()).find(state)))

    def claim(self) -> DraftRecord:
        """A pending draft no other test has taken (never a hostile company's: the stored
        script test reads those as they are)."""
        for record in self.drafts("pending"):
            with self._lock:
                if record.id not in self._claimed and not record.id.startswith(HOSTILE_PREFIX):
                    self._claimed.add(record.id)
                    return record
        raise AssertionError("no pending draft left for this test")

    def _finish_today(self) -> None:
        """Resume today's prospect jobs if they are still held, and wait for the run."""
        if self._ready:
            return

        async def finish(redis: Redis) -> str:
            await PauseSwitch(redis, WorkerKeys()).resume(PROSPECT_JOB)
            settings = Settings(REDIS_URL=self.redis_url)
            client = await QueueClient.connect(settings)
            try:
                report = await client.wait(self.today_job, lambda _r: None, poll_s=0.05)
            finally:
                await client.close()
            return report.state

        state = in_thread(self._redis(finish))
        assert state == "complete", f"today's run ended {state}"
        self._ready = True

    async def _redis(self, work: Callable[[Redis], Coroutine[Any, Any, T]]) -> T:
        redis = Redis.from_url(self.redis_url, decode_responses=True)
        try:
            return await work(redis)
        finally:
            await redis.aclose()

    def plant_dead_letter(self, job_id: str) -> str:
        """A dead letter of a job that can be replayed (a cleanup that failed for good), as the
        runtime writes one; its entry id."""

        async def plant(redis: Redis) -> str:
            letters = DeadLetters(
                redis, WorkerKeys(), queue_name="arq:queue", job_expires_ms=60_000
            )
            return await letters.add(job_id=job_id, **REPLAYABLE_ENTRY)

        return in_thread(self._redis(plant))


async def hold_today(redis_url: str) -> str:
    """Today's run, enqueued with its prospect jobs paused: it fans out and waits."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await PauseSwitch(redis, WorkerKeys()).pause(PROSPECT_JOB)
    finally:
        await redis.aclose()
    settings = Settings(REDIS_URL=redis_url)
    client = await QueueClient.connect(settings, specs=job_specs(settings))
    try:
        return await client.enqueue(DAILY_JOB)
    finally:
        await client.close()


@pytest.fixture(scope="module")
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
            PW_FANOUT_HEADROOM="0",
            TEST_SITES_PORT=str(fake.port),
            # Enqueues wake the worker; a 10 ms poll would only burn CPU the browser needs.
            PW_POLL_DELAY_S="0.2",
        )
        console_env = {
            **env,
            "PW_CONSOLE__USERS": demo_users(passwords),
            "PW_CONSOLE__SESSION_SECRET": secrets.token_urlsafe(32),
        }
        today_job = in_thread(hold_today(redis.url))
        with (
            WorkerProcess(
                env, base / "worker.log", settings="tests.support.loopback_sites.WorkerSettings"
            ) as worker,
            console_process(console_env, base / "console.log") as console,
        ):
            # Seconds on a quiet machine; a loaded one has taken more than 30 to start a worker.
            worker.wait_ready(timeout=START_TIMEOUT_S)
            console.wait_ready(timeout=START_TIMEOUT_S)
            shots = SCREENSHOTS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else base / "shots"
            shots.mkdir(parents=True, exist_ok=True)
            yield Stack(console.url, passwords, redis.url, mail, shots, today_job)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # The system's browser, never one Playwright would download.
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        yield chromium
        chromium.close()


@dataclass
class Session:
    page: Page
    dialogs: list[str]  # every dialog that opened: "type: message"


OpenSession = Callable[[str], Session]


@pytest.fixture(scope="module")
def signed_in(browser: Browser, stack: Stack) -> dict[str, StorageState]:
    """Each role signed in once, posting the form as the browser would (the sign-in test
    fills it in on the page); tests start from copies of its cookies."""
    states: dict[str, StorageState] = {}
    for role in ROLES:
        context = browser.new_context(base_url=stack.url)
        form = context.request.get("/signin").text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        fields = {"csrf_token": token.group(1), "next": "/", "user": role}
        done = context.request.post(
            "/signin", form={**fields, "password": stack.passwords[role]}, max_redirects=0
        )
        assert done.status == 303, done.text()
        states[role] = context.storage_state()
        context.close()
    return states


@pytest.fixture
def open_session(
    browser: Browser, stack: Stack, signed_in: dict[str, StorageState]
) -> Iterator[OpenSession]:
    """A role's session in a browser context of its own (a copy of its signed-in cookies)."""
    contexts = []

    def open_as(role: str) -> Session:
        context = browser.new_context(
            base_url=stack.url, viewport=VIEWPORT, storage_state=signed_in[role]
        )
        contexts.append(context)
        page = context.new_page()
        dialogs: list[str] = []

        def opened(dialog: Dialog) -> None:
            # The console's own confirmations are accepted; anything else (a stored script
            # that ran would alert) is recorded and dismissed.
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

        page.on("dialog", opened)
        return Session(page, dialogs)

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Page, user: str, password: str) -> None:
    page.goto("/signin")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, stack: Stack, name: str, top: Locator | None = None) -> Path:
    """The page as it is shown (from `top` when given, else from its start)."""
    if top is not None:
        top.evaluate("(element) => element.scrollIntoView({block: 'start'})")
    else:
        page.evaluate("() => window.scrollTo(0, 0)")
    path = stack.shots / f"{name}.png"
    page.screenshot(path=str(path))
    return path
