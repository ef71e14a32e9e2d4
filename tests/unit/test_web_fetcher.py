"""WebsiteFetcher on httpx.MockTransport: URL rules, redirects, caps and error classes."""

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from jobs.errors import PermanentError, RateLimited, TransientError
from jobs.web.fetch import FetchedPage, WebsiteFetcher, checked_url
from jobs.web.netguard import AddressRefused, guarded_transport
from tests.support.fake_network import FakeBackend
from tests.unit.test_netguard import FakeResolver

Handler = Callable[[httpx.Request], httpx.Response]
HTML = {"Content-Type": "text/html; charset=utf-8"}


def fetcher(handler: Handler, **options: float) -> tuple[WebsiteFetcher, list[httpx.Request]]:
    """A fetcher on a mock transport, and the list of requests that transport saw."""
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return WebsiteFetcher(client, **options), seen  # type: ignore[arg-type]


def streamed(
    body: bytes, *, status: int = 200, headers: dict[str, str] = HTML, chunk: int = 1_000
) -> httpx.Response:
    """A response read from its stream, as from the network (bytes content arrives pre-read)."""

    async def parts() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    return httpx.Response(status, headers=headers, content=parts())


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=HTML, content=b"<title>Acme</title>")


# --- which URLs are requested at all -------------------------------------------------------


async def test_bare_domain_becomes_https_root() -> None:
    fetch, seen = fetcher(ok)
    page = await fetch.fetch("  Acme.example ")
    assert [str(r.url) for r in seen] == ["https://acme.example/"]
    assert page == FetchedPage(
        final_url="https://acme.example/",
        status=200,
        content_type="text/html",
        text="<title>Acme</title>",
        truncated=False,
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://acme.example/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:sales@acme.example",
        "gopher://acme.example:70/",
        "https://user:secret@acme.example/",
        "https://acme.example:8080/",
        "acme.example:6379",
        "https:///path-only",
        "",
        "https://intranet/",
    ],
)
async def test_refused_urls_are_never_requested(url: str) -> None:
    fetch, seen = fetcher(ok)
    with pytest.raises(PermanentError):
        await fetch.fetch(url)
    assert seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 in the decimal spelling getaddrinfo accepts
        "http://0x7f.1/",
        "http://127.1/",
    ],
)
async def test_literal_private_ip_is_refused_before_any_request(url: str) -> None:
    fetch, seen = fetcher(ok)
    with pytest.raises(AddressRefused):
        await fetch.fetch(url)
    assert seen == []


def test_checked_url_keeps_allowed_ports_and_public_literals() -> None:
    assert str(checked_url("http://acme.example:80/x")) == "http://acme.example/x"
    assert checked_url("https://8.8.8.8/").host == "8.8.8.8"
    assert checked_url("//acme.example/a").scheme == "https"


# --- redirects ------------------------------------------------------------------------------


async def test_redirects_are_followed_and_revalidated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "acme.example":
            return httpx.Response(301, headers={"Location": "https://www.acme.example/home"})
        return ok(request)

    fetch, seen = fetcher(handler)
    page = await fetch.fetch("http://acme.example")
    assert [str(r.url) for r in seen] == ["http://acme.example/", "https://www.acme.example/home"]
    assert page.final_url == "https://www.acme.example/home"
    assert page.status == 200


async def test_redirect_cap() -> None:
    def loop(request: httpx.Request) -> httpx.Response:
        hop = int(request.url.params.get("n", "0"))
        return httpx.Response(302, headers={"Location": f"/?n={hop + 1}"})

    fetch, seen = fetcher(loop, max_redirects=3)
    with pytest.raises(PermanentError, match="more than 3 redirects"):
        await fetch.fetch("acme.example")
    assert len(seen) == 4  # the first request and three redirects, then no more


async def test_redirect_to_private_literal_ip_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest/"})

    fetch, seen = fetcher(handler)
    with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):
        await fetch.fetch("acme.example")
    assert [r.url.host for r in seen] == ["acme.example"]


async def test_redirect_to_other_scheme_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "gopher://acme.example/"})

    fetch, seen = fetcher(handler)
    with pytest.raises(PermanentError, match="scheme"):
        await fetch.fetch("acme.example")
    assert len(seen) == 1


# --- the body -------------------------------------------------------------------------------


@pytest.mark.parametrize("in_memory", [False, True])
async def test_body_is_cut_at_max_bytes(in_memory: bool) -> None:
    body = b"<p>" + b"a" * 5_000 + b"</p>"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=HTML, content=body) if in_memory else streamed(body)

    fetch, _ = fetcher(handler, max_bytes=1_000)
    page = await fetch.fetch("acme.example")
    assert page.truncated is True
    assert page.text == body[:1_000].decode()


async def test_body_under_the_cap_is_whole() -> None:
    fetch, _ = fetcher(lambda r: streamed(b"<p>" * 2_000), max_bytes=6_000)
    page = await fetch.fetch("acme.example")
    assert (page.truncated, len(page.text)) == (False, 6_000)


async def test_streamed_body_stops_being_read_at_the_cap() -> None:
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        while True:
            chunks_sent += 1
            yield b"x" * 1_000

    fetch, _ = fetcher(
        lambda r: httpx.Response(200, headers=HTML, content=endless()), max_bytes=10_000
    )
    page = await fetch.fetch("acme.example")
    assert page.truncated and len(page.text) == 10_000
    assert chunks_sent <= 11


async def test_gzip_bomb_is_inflated_only_to_the_cap() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    fetch, _ = fetcher(
        lambda r: streamed(bomb, headers={**HTML, "Content-Encoding": "gzip"}),
        max_bytes=4_096,
    )
    page = await fetch.fetch("acme.example")
    assert page.truncated is True
    assert len(page.text) == 4_096


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
async def test_deflate_with_or_without_zlib_header(wbits: int) -> None:
    packer = zlib.compressobj(wbits=wbits)
    body = packer.compress(b"<title>Deflated</title>") + packer.flush()
    fetch, _ = fetcher(
        lambda r: streamed(body, headers={**HTML, "Content-Encoding": "deflate"}, chunk=7)
    )
    page = await fetch.fetch("acme.example")
    assert page.text == "<title>Deflated</title>"
    assert page.truncated is False


async def test_charset_from_the_header() -> None:
    body = "<title>Café Müller</title>".encode("iso-8859-1")
    fetch, _ = fetcher(
        lambda r: streamed(body, headers={"Content-Type": "text/html; charset=ISO-8859-1"})
    )
    assert (await fetch.fetch("acme.example")).text == "<title>Café Müller</title>"


async def test_charset_from_meta_when_the_header_has_none() -> None:
    body = '<meta charset="windows-1252"><title>Señor €</title>'.encode("cp1252")
    fetch, _ = fetcher(lambda r: streamed(body, headers={"Content-Type": "text/html"}))
    assert "Señor €" in (await fetch.fetch("acme.example")).text


async def test_undecodable_bytes_become_replacement_characters() -> None:
    fetch, _ = fetcher(
        lambda r: httpx.Response(
            200, headers={"Content-Type": "text/html; charset=no-such-charset"}, content=b"ok \xff"
        )
    )
    assert (await fetch.fetch("acme.example")).text == "ok \ufffd"


async def test_non_html_is_returned_without_text() -> None:
    fetch, _ = fetcher(
        lambda r: httpx.Response(200, headers={"Content-Type": "application/pdf"}, content=b"%PDF")
    )
    page = await fetch.fetch("acme.example/brochure.pdf")
    assert (page.status, page.content_type, page.text) == (200, "application/pdf", "")


# --- outcomes -------------------------------------------------------------------------------


async def test_404_is_a_page_not_an_error() -> None:
    fetch, _ = fetcher(lambda r: streamed(b"<h1>Not found</h1>", status=404))
    page = await fetch.fetch("acme.example")
    assert page.status == 404
    assert page.text == "<h1>Not found</h1>"


async def test_503_is_transient_with_retry_after() -> None:
    fetch, _ = fetcher(lambda r: httpx.Response(503, headers={"Retry-After": "30"}))
    with pytest.raises(TransientError, match="503") as caught:
        await fetch.fetch("acme.example")
    assert caught.value.retry_after == 30.0


async def test_429_is_rate_limited() -> None:
    fetch, _ = fetcher(lambda r: httpx.Response(429))
    with pytest.raises(RateLimited):
        await fetch.fetch("acme.example")


async def test_transport_timeout_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    fetch, _ = fetcher(handler)
    with pytest.raises(TransientError, match="timed out"):
        await fetch.fetch("acme.example")


async def test_connect_error_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fetch, _ = fetcher(handler)
    with pytest.raises(TransientError, match="ConnectError"):
        await fetch.fetch("acme.example")


async def test_slow_body_hits_the_whole_fetch_deadline() -> None:
    async def dribble() -> AsyncIterator[bytes]:
        while True:
            yield b"a"
            await asyncio.sleep(0.02)

    fetch, _ = fetcher(lambda r: httpx.Response(200, headers=HTML, content=dribble()), timeout=0.1)
    with pytest.raises(TransientError, match="no page within"):
        await fetch.fetch("acme.example")


# --- with the real guard on a fake network --------------------------------------------------


async def test_guard_refusal_reaches_the_caller_naming_the_host() -> None:
    inner = FakeBackend()
    transport = guarded_transport(resolver=FakeResolver(["10.20.30.40"]), backend=inner)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(AddressRefused, match=r"internal\.acme\.example"):
            await WebsiteFetcher(client).fetch("internal.acme.example")
    assert inner.connects == []
