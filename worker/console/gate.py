"""Who is asking: nothing but /healthz and the sign-in page answers a request with no signed-in
user. An ASGI middleware around every route, so a route added later is guarded without a word
(tests/integration/test_console_security.py enumerates the router to hold that).

Two ways in: an auth proxy's headers, believed only when `PW_CONSOLE__TRUST_PROXY_HEADERS` is
set (the proxy user gets a session of its own, carrying the CSRF token), or a session made by
signing in with a built-in user's password.
"""

from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import ConsoleSettings
from worker.console.deps import Console, console_of
from worker.console.sessions import Session
from worker.ops.actor import Actor, Role

SESSION_COOKIE = "pw_console_session"
POLL_HEADER = "X-Console-Poll"  # sent by the page's own refreshes (htmx polls, the charts)
PUBLIC = frozenset({"/healthz", "/signin", "/static/console.css"})
RANK: dict[Role, int] = {"viewer": 0, "approver": 1, "operator": 2}


@dataclass(frozen=True)
class Signed:
    session: Session
    actor: Actor
    new_cookie: str | None = None  # a proxy user's fresh session, to set on the response


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure(request: Request, settings: ConsoleSettings) -> bool:
    return settings.secure_cookies == "always" or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, console: Console, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=secure(request, console.settings),
        path="/",
    )


def proxy_role(groups_header: str, group_roles: dict[str, Role]) -> Role | None:
    """The strongest role of the user's groups; None when no group is mapped."""
    roles = [group_roles[g.strip()] for g in groups_header.split(",") if g.strip() in group_roles]
    return max(roles, key=RANK.__getitem__, default=None)


async def identify(request: Request, console: Console) -> Signed | Response | None:
    """The signed-in user; a refusal to answer with; or None (nobody signed in)."""
    settings = console.settings
    cookie = request.cookies.get(SESSION_COOKIE)
    # A page left open polls every few seconds: that keeps no session alive.
    touch = request.headers.get(POLL_HEADER) != "1"
    session = await console.sessions.load(cookie, touch=touch) if cookie else None
    address = client_address(request)
    if settings.trust_proxy_headers and (user := request.headers.get(settings.proxy_user_header)):
        role = proxy_role(
            request.headers.get(settings.proxy_groups_header, ""), settings.group_roles
        )
        if role is None:
            return PlainTextResponse(f"{user} has no console role: ask for a group", 403)
        if session is not None and (session.how, session.user, session.role) == (
            "proxy",
            user,
            role,
        ):
            return Signed(session, Actor(name=user, role=role, door="console", source=address))
        new_cookie = await console.sessions.create(user, role, "proxy")
        fresh = await console.sessions.load(new_cookie)
        if fresh is None:  # pragma: no cover - a session just written is there to read
            return None
        actor = Actor(name=user, role=role, door="console", source=address)
        return Signed(fresh, actor, new_cookie)
    if session is None or session.how != "password":
        # A proxy's session without the proxy's header came around the proxy: not believed.
        return None
    known = console.users.get(session.user)
    if known is None or known.role != session.role:  # removed, or given another role
        return None
    return Signed(
        session, Actor(name=session.user, role=session.role, door="console", source=address)
    )


def to_signin(request: Request) -> Response:
    """A browser is sent to sign in and back; htmx and other clients get 401."""
    if request.method == "GET" and "hx-request" not in request.headers:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
    return PlainTextResponse("sign in first", 401, headers={"HX-Redirect": "/signin"})


class SignInGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        console = console_of(request)
        signed = await identify(request, console)
        if not isinstance(signed, Signed):
            await (signed or to_signin(request))(scope, receive, send)
            return
        scope.setdefault("state", {})["signed"] = signed
        if signed.new_cookie is None:
            await self.app(scope, receive, send)
            return
        cookie = Response()
        set_session_cookie(cookie, request, console, signed.new_cookie)
        set_cookie_header = cookie.headers["set-cookie"]

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", set_cookie_header)
            await send(message)

        await self.app(scope, receive, with_cookie)


def signed_of(request: Request) -> Signed:
    signed: Signed = request.state.signed
    return signed
