"""The console's doors at the HTTP level: the sign-in gate over every route, CSRF, roles,
cookies, the sign-in throttle, `next=`, and the security headers."""

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from tests.support.console import (
    FakeClock,
    browser,
    console_app,
    console_settings,
    csrf_of,
    field,
    password_of,
    sign_in,
)
from worker.console.gate import PUBLIC

pytestmark = pytest.mark.usefixtures("redis_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(redis_url: str, clock: FakeClock) -> AsyncIterator[Starlette]:
    async with console_app(console_settings(redis_url), clock=clock) as app:
        yield app


def every_route(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route the app has, read from its own router: a route added
    later is in this list without anyone adding it."""
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            path = route.path.replace("{", "").replace("}", "")  # a path parameter: any value
            found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
        elif isinstance(route, Mount):
            found.append(("GET", route.path + "/app.js"))
    return found


def post_routes(app: Starlette) -> list[str]:
    return [path for method, path in every_route(app) if method == "POST" and path not in PUBLIC]


async def test_every_route_but_the_public_ones_wants_a_signed_in_user(app: Starlette) -> None:
    routes = every_route(app)
    assert len(routes) > 5
    async with browser(app) as client:
        for method, path in routes:
            if path in PUBLIC:
                continue
            response = await client.request(method, path)
            if response.status_code == 303:
                assert response.headers["location"].startswith("/signin?next="), (method, path)
            else:
                assert response.status_code == 401, (method, path, response.status_code)
            assert "csrf_token" not in response.text


async def test_health_answers_without_anyone_signed_in(app: Starlette) -> None:
    async with browser(app) as client:
        assert (await client.get("/healthz")).text == "ok"


async def test_a_page_sends_the_browser_to_sign_in_and_back(app: Starlette) -> None:
    async with browser(app) as client:
        first = await client.get("/jobs?id=abc")
        assert first.status_code == 303
        next_path = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
        assert next_path == "/jobs?id=abc"
        signed = await sign_in(client, "vera", next_path=next_path)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/jobs?id=abc"
        assert (await client.get("/")).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "http:evil.example",
        "/%0d%0aLocation:%20https://evil.example",
        "javascript:alert(1)",
    ],
)
async def test_next_leads_only_to_the_consoles_own_paths(app: Starlette, target: str) -> None:
    async with browser(app) as client:
        signed = await sign_in(client, "vera", next_path=target)
        assert signed.status_code == 303
        location = signed.headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\"))
        assert "evil" not in location.split("?")[0] or location.startswith("/%")


async def test_a_wrong_password_or_an_unknown_user_is_refused_alike(app: Starlette) -> None:
    async with browser(app) as client:
        wrong = await sign_in(client, "vera", "not-her-password")
        unknown = await sign_in(client, "nobody", "whatever")
        assert wrong.status_code == unknown.status_code == 401
        assert "Wrong user name or password." in wrong.text
        assert "Wrong user name or password." in unknown.text
        # A failed try keeps where the person was going.
        again = await sign_in(client, "vera", "wrong", next_path="/jobs?id=x")
        assert field(again.text, "next") == "/jobs?id=x"
        assert (await client.get("/")).status_code == 303


async def test_sign_in_without_the_forms_token_is_refused(app: Starlette) -> None:
    async with browser(app) as client:
        response = await client.post(
            "/signin", data={"user": "vera", "password": "pw-of-vera", "csrf_token": "forged"}
        )
        assert response.status_code == 403
        assert (await client.get("/")).status_code == 303


async def test_the_forms_token_outlives_the_browsers_other_requests(app: Starlette) -> None:
    """A browser showing the sign-in form also asks for the favicon and the page's scripts, and
    each is sent to sign in: the form it shows must still be accepted (it was refused, seen
    in the browser tests)."""
    async with browser(app) as client:
        form = await client.get("/signin")
        for extra in ("/favicon.ico", "/static/app.js"):
            assert (await client.get(extra, follow_redirects=True)).status_code == 200
        signed_in = await client.post(
            "/signin",
            data={
                "csrf_token": field(form.text, "csrf_token"),
                "next": "/",
                "user": "vera",
                "password": password_of("vera"),
            },
        )
        assert signed_in.status_code == 303, signed_in.text
        assert (await client.get("/")).status_code == 200


async def test_failed_sign_ins_slow_the_next_ones_per_user_and_address(
    app: Starlette, clock: FakeClock
) -> None:
    async with browser(app) as client, browser(app, address="127.0.0.2") as elsewhere:
        for _ in range(3):  # the free failures (PW_CONSOLE__SIGNIN_FREE_FAILURES)
            assert (await sign_in(client, "vera", "guess")).status_code == 401
        waiting = await sign_in(client, "vera")  # the right password, but too soon
        assert waiting.status_code == 429
        assert int(waiting.headers["retry-after"]) >= 1
        # Another address, or another user from this one, is not held up.
        assert (await sign_in(elsewhere, "vera")).status_code == 303
        assert (await sign_in(client, "alan")).status_code == 303
        clock.now += 1.5
        assert (await sign_in(client, "vera", "guess")).status_code == 401
        clock.now += 1.5  # the wait doubled: not yet
        assert (await sign_in(client, "vera")).status_code == 429
        clock.now += 1
        assert (await sign_in(client, "vera")).status_code == 303


async def session_cookie(redis_url: str, scheme: str, **console: str) -> str:
    """The Set-Cookie of a successful sign-in, on a console with these console settings."""
    settings = console_settings(redis_url, **console)
    async with console_app(settings) as app, browser(app, scheme=scheme) as client:
        response = await sign_in(client, "vera")
    cookies = [value for key, value in response.headers.multi_items() if key == "set-cookie"]
    return next(cookie for cookie in cookies if cookie.startswith("pw_console_session="))


async def test_the_session_cookie_is_httponly_samesite_and_secure_when_asked(
    redis_url: str,
) -> None:
    laptop = (await session_cookie(redis_url, "http", secure_cookies="auto")).lower()
    assert "httponly" in laptop and "samesite=strict" in laptop
    assert "secure" not in laptop  # plain HTTP on a laptop
    assert "; secure" in (await session_cookie(redis_url, "https", secure_cookies="auto")).lower()
    assert "; secure" in (await session_cookie(redis_url, "https", secure_cookies="always")).lower()


async def test_a_session_ends_when_idle_and_at_sign_out(app: Starlette, clock: FakeClock) -> None:
    async with browser(app) as client:
        await sign_in(client, "vera")
        clock.now += 1_700
        assert (await client.get("/")).status_code == 200  # used: the idle time starts again
        clock.now += 1_700
        assert (await client.get("/")).status_code == 200
        clock.now += 1_801
        assert (await client.get("/")).status_code == 303
        await sign_in(client, "vera")
        token = await csrf_of(client)
        cookie = client.cookies["pw_console_session"]
        assert (await client.post("/signout", data={"csrf_token": token})).status_code == 303
        # The old cookie, replayed after sign-out, is worth nothing.
        client.cookies.set("pw_console_session", cookie)
        assert (await client.get("/")).status_code == 303


async def test_every_post_without_a_valid_csrf_token_is_refused(app: Starlette) -> None:
    posts = post_routes(app)
    assert "/signout" in posts
    async with browser(app) as client:
        await sign_in(client, "olivia")
        for path in posts:
            missing = await client.post(path, data={"reason": "x"})
            forged = await client.post(path, data={"csrf_token": "forged"})
            assert missing.status_code == forged.status_code == 403, path
        assert (await client.get("/")).status_code == 200  # still signed in: nothing happened


async def test_a_viewer_is_refused_every_action_but_signing_out_and_each_try_is_audited(
    app: Starlette, redis: Redis
) -> None:
    async with browser(app) as client:
        await sign_in(client, "vera")
        token = await csrf_of(client)
        actions = [path for path in post_routes(app) if path != "/signout"]
        for path in actions:
            response = await client.post(path, data={"csrf_token": token})
            assert response.status_code == 403, path
            assert "vera is a viewer and may not" in response.text
    entries = await redis.xrange("pw:stream:audit")
    assert sorted(fields["target"] for _, fields in entries) == sorted(actions)
    assert all(fields["outcome"].startswith("refused (forbidden)") for _, fields in entries)


async def test_every_response_carries_the_security_headers(app: Starlette) -> None:
    async with browser(app) as client:
        answers = [
            await client.get("/healthz"),
            await client.get("/signin"),
            await client.get("/"),  # the gate's redirect
            await client.get("/static/console.css"),
        ]
        await sign_in(client, "vera")
        answers += [await client.get("/"), await client.get("/no-such-page")]
    for response in answers:
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


async def test_a_signed_in_page_is_never_cached(app: Starlette) -> None:
    async with browser(app) as client:
        await sign_in(client, "vera")
        assert (await client.get("/")).headers["cache-control"] == "no-store"


async def test_a_proxy_user_is_believed_only_when_the_console_is_told_to(redis_url: str) -> None:
    headers = {"X-Forwarded-User": "pat", "X-Forwarded-Groups": "staff,sales"}
    async with console_app(console_settings(redis_url)) as app, browser(app) as client:
        assert (await client.get("/", headers=headers)).status_code == 303
    trusting = console_settings(
        redis_url, trust_proxy_headers=True, group_roles={"sales": "approver", "sre": "operator"}
    )
    async with console_app(trusting) as app, browser(app) as client:
        page = await client.get("/", headers=headers)
        assert page.status_code == 200
        assert "pat · approver" in page.text
        # The session it got carries a CSRF token; without the proxy's header it is nothing.
        assert (await client.get("/")).status_code == 303
        # A proxy user's actions carry its session's token like anyone's, and its role holds.
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
        assert token
        refused = await client.post(
            "/controls/pause", headers={**headers, "X-CSRF-Token": token[1]}
        )
        assert refused.status_code == 403
        operator = {"X-Forwarded-User": "pat", "X-Forwarded-Groups": "sales, sre"}
        page = await client.get("/", headers=operator)  # another role: another session
        token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
        assert token
        paused = await client.post(
            "/controls/pause", headers={**operator, "X-CSRF-Token": token[1]}
        )
        assert paused.status_code == 200 and "paused the queue" in paused.text
        assert "Sign out" not in page.text  # the proxy signs its users out, not the console
        unmapped = {"X-Forwarded-User": "sam", "X-Forwarded-Groups": "x"}
        nobody = await client.get("/", headers=unmapped)
        assert nobody.status_code == 403


async def test_the_console_refuses_to_start_without_a_way_in(redis_url: str) -> None:
    from worker.console.app import ConsoleNotReady, create_app

    with pytest.raises(ConsoleNotReady, match="PW_CONSOLE__SESSION_SECRET"):
        create_app(console_settings(redis_url, session_secret=None), users={})
    with pytest.raises(ConsoleNotReady, match="no way to sign in"):
        create_app(console_settings(redis_url), users={})


async def test_every_page_answers_each_role_on_an_empty_redis(app: Starlette) -> None:
    pages = [path for method, path in every_route(app) if method == "GET" and path not in PUBLIC]
    for user in ("vera", "alan", "olivia"):
        async with browser(app) as client:
            await sign_in(client, user)
            for path in pages:
                response = await client.get(path)
                # 400 or 404: a page that needs an id it was not given.
                assert response.status_code in (200, 400, 404), (user, path, response.text[:300])


async def test_a_body_over_the_limit_is_refused_before_it_is_read(app: Starlette) -> None:
    async with browser(app) as client:
        await sign_in(client, "alan")
        token = await csrf_of(client)
        huge = await client.post(
            "/drafts/edit", data={"csrf_token": token, "draft_id": "x", "body": "a" * 2_000_000}
        )
        assert huge.status_code == 413


async def test_a_forged_or_corrupt_session_is_nobody_and_a_session_ends_at_its_maximum_age(
    app: Starlette, clock: FakeClock, redis: Redis
) -> None:
    async with browser(app) as client:
        client.cookies.set("pw_console_session", "made-up.signature")
        assert (await client.get("/")).status_code == 303
        await sign_in(client, "vera")
        for key in await redis.keys("pw:console:session:*"):
            await redis.set(key, "{not json")
        assert (await client.get("/")).status_code == 303
        await sign_in(client, "vera")
        for _ in range(30):  # used every 28 minutes: never idle, but 12 hours pass
            clock.now += 1_700
            answer = await client.get("/")
            if answer.status_code != 200:
                break
        assert answer.status_code == 303 and clock.now - FakeClock().now > 43_200


async def test_a_page_polling_by_itself_keeps_no_session_alive(
    app: Starlette, clock: FakeClock
) -> None:
    poll = {"X-Console-Poll": "1", "HX-Request": "true"}
    async with browser(app) as client:
        await sign_in(client, "vera")
        for _ in range(2):
            clock.now += 700
            assert (await client.get("/today/live", headers=poll)).status_code == 200
        clock.now += 500  # 1,900 s since the person last did anything: over the idle timeout
        assert (await client.get("/today/live", headers=poll)).status_code == 401
