"""The console in-process on the session's Redis, and browsers of it: an httpx client on the
app (ASGITransport), signed in as one of three test users, one per role."""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from argon2 import PasswordHasher
from starlette.applications import Starlette

from settings import Settings
from tests.integration.conftest import make_settings
from worker.console.app import create_app
from worker.console.users import ConsoleUser
from worker.ops.actor import Role

SECRET = "test-session-secret-0123456789-abcdefghij"  # noqa: S105 - a test value
# argon2id still, with the smallest costs: the tests sign in dozens of times.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ROLES: dict[str, Role] = {"olivia": "operator", "alan": "approver", "vera": "viewer"}
HOST = "console.test"


def password_of(name: str) -> str:
    return f"pw-of-{name}"


def make_users() -> dict[str, ConsoleUser]:
    return {
        name: ConsoleUser(name=name, role=role, password_hash=CHEAP.hash(password_of(name)))
        for name, role in ROLES.items()
    }


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def console_settings(redis_url: str, **console: Any) -> Settings:
    return make_settings(redis_url, console={"session_secret": SECRET, **console})


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[Starlette]:
    async with app.router.lifespan_context(app):
        yield app


def browser(
    app: Starlette, *, address: str = "127.0.0.1", scheme: str = "http"
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50_000)),
        base_url=f"{scheme}://{HOST}",
    )


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, user: str, password: str | None = None, *, next_path: str = ""
) -> httpx.Response:
    form_page = await client.get("/signin", params={"next": next_path} if next_path else None)
    return await client.post(
        "/signin",
        data={
            "csrf_token": field(form_page.text, "csrf_token"),
            "next": field(form_page.text, "next"),
            "user": user,
            "password": password_of(user) if password is None else password,
        },
    )


async def csrf_of(client: httpx.AsyncClient) -> str:
    """The session's CSRF token, as a page carries it."""
    return field((await client.get("/")).text, "csrf_token")


@asynccontextmanager
async def console_app(settings: Settings, **kwargs: Any) -> AsyncIterator[Starlette]:
    kwargs.setdefault("users", make_users())
    async with running(create_app(settings, **kwargs)) as app:
        yield app
