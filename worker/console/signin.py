"""Signing in with a built-in user's password, and out.

The sign-in form carries a token matching a signed cookie set with it (no session exists yet
to hold one), so another site cannot sign a browser in as someone else. `next=` leads back only
to one of the console's own paths.
"""

import hmac
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadSignature, Signer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from worker.console.deps import Console, console_of
from worker.console.gate import SESSION_COOKIE, client_address, secure, set_session_cookie
from worker.console.passwords import DECOY_HASH, verify
from worker.console.routing import CSRF_FIELD, action, render
from worker.ops.actor import Actor

SIGNIN_COOKIE = "pw_console_signin"


def safe_next(target: str | None) -> str:
    """The path to go back to: one of the console's own, never another site's (`//evil`,
    `/\\evil`, `https://evil`), nor the sign-in page itself."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 0x20 or char == "\\" for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("/signin"):
        return "/"
    return target


def _signer(console: Console) -> Signer:
    return Signer(console.secret, salt="prospect-worker console sign-in form")


def _form_nonce(request: Request, console: Console) -> str:
    """The browser's sign-in token if it has a valid one, else a new one. A browser fetches
    more than the page (the favicon, say) and each is sent to sign in: a new token for each
    would leave the form it shows holding a stale one, refused at the first try."""
    try:
        return _signer(console).unsign(request.cookies.get(SIGNIN_COOKIE, "")).decode()
    except BadSignature:
        return secrets.token_urlsafe(24)


def signin_form(
    request: Request,
    *,
    message: str = "",
    status: int = 200,
    user: str = "",
    next_path: str | None = None,
) -> Response:
    console = console_of(request)
    nonce = _form_nonce(request, console)
    response = render(
        request,
        "signin.html",
        {
            "message": message,
            "user": user,
            "next": safe_next(next_path or request.query_params.get("next")),
            "signin_token": nonce,
            "passwords": bool(console.users),
            "proxy": console.settings.trust_proxy_headers,
        },
        status=status,
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        _signer(console).sign(nonce).decode(),
        httponly=True,
        samesite="strict",
        secure=secure(request, console.settings),
        path="/signin",
    )
    return response


async def show(request: Request) -> Response:
    return signin_form(request)


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    form = await request.form(max_files=0, max_fields=10)
    try:
        nonce = _signer(console).unsign(request.cookies.get(SIGNIN_COOKIE, "")).decode()
    except BadSignature:
        nonce = ""
    token = str(form.get(CSRF_FIELD, ""))
    back = str(form.get("next", ""))  # kept through a failed try
    if not nonce or not hmac.compare_digest(nonce.encode(), token.encode()):
        message = "The form had expired: sign in again."
        return signin_form(request, message=message, status=403, next_path=back)
    user, password = str(form.get("user", "")).strip(), str(form.get("password", ""))
    address = client_address(request)
    wait = await console.throttle.wait_s(user, address)
    if wait > 0:
        response = signin_form(
            request,
            message=f"Too many failed sign-ins: try again in {int(wait) + 1} s.",
            status=429,
            user=user,
            next_path=back,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    known = console.users.get(user)
    # An unknown name costs a hash check too, so timing tells no one which names exist.
    matched = await run_in_threadpool(
        verify, known.password_hash if known else DECOY_HASH, password
    )
    if known is None or not matched:
        await console.throttle.failed(user, address)
        message = "Wrong user name or password."
        return signin_form(request, message=message, status=401, user=user, next_path=back)
    await console.throttle.succeeded(user, address)
    cookie = await console.sessions.create(known.name, known.role, "password")
    target = safe_next(back)
    response = RedirectResponse(target, 303)
    set_session_cookie(response, request, console, cookie)
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


async def sign_out(request: Request, actor: Actor, _form: FormData) -> Response:
    console = console_of(request)
    await console.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/signin", 303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure(request, console.settings),
    )
    return response


ROUTES = [
    Route("/signin", show, methods=["GET"], name="signin"),
    Route("/signin", sign_in, methods=["POST"], name="sign_in"),
    action("/signout", sign_out, permission="read"),
]
