"""Fetching one company's website: an untrusted URL, fetched within caps on every axis.

The URL is checked here (scheme, port, userinfo, literal addresses) on the first request and on
every redirect; the addresses a hostname resolves to are checked by the client's transport
(jobs.web.netguard.guarded_transport), which is the guard that matters.
"""

import asyncio
import codecs
import ipaddress
import re
import socket
import zlib
from dataclasses import dataclass

import httpx

from jobs.clients.http import parse_retry_after
from jobs.errors import PermanentError, RateLimited, TransientError
from jobs.web.netguard import AddressRefused, IPAddress, refusal_reason

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ALLOWED_PORTS = frozenset({80, 443})

# A scheme is letters then ':'; "acme.example:443" is a host and port, not a scheme.
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):(?!\d+(?:[/?#]|$))")
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class FetchedPage:
    final_url: str
    status: int
    content_type: str | None  # media type only, lowercased: "text/html"
    text: str  # "" unless the body is HTML
    truncated: bool  # the body was longer than max_bytes and was cut


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # A host whose last label is a number is an IPv4 address in legacy spelling ("127.1",
    # "0x7f.0.0.1", "2130706433"): the system resolver reads it as one, so we must too.
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    if last.isdigit() or last.startswith("0x"):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise PermanentError(f"malformed host {host!r}") from None
    return None


def checked_url(raw: str | httpx.URL) -> httpx.URL:
    """`raw` as an absolute http(s) URL we are willing to request, or PermanentError."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise PermanentError("empty website URL")
        if text.startswith("//"):
            text = "https:" + text
        elif "://" not in text and not _SCHEME.match(text):
            text = "https://" + text  # a bare domain, as providers often give it
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise PermanentError(f"malformed website URL {raw!r}: {exc}") from exc
    else:
        url = raw
    if url.scheme not in ("http", "https"):
        raise PermanentError(f"refused URL scheme {url.scheme!r} in {str(raw)[:200]!r}")
    if url.userinfo:
        raise PermanentError(f"refused URL with credentials (host {url.host!r})")
    host = url.host
    if not host:
        raise PermanentError(f"URL has no host: {str(raw)[:200]!r}")
    if url.port is not None and url.port not in ALLOWED_PORTS:
        raise PermanentError(f"refused port {url.port} on {host}")
    ip = _literal_ip(host)
    if ip is not None:
        reason = refusal_reason(ip)
        if reason is not None:
            raise AddressRefused(f"refused to fetch {host}: {reason}", host=host, address=str(ip))
    elif "." not in host.rstrip("."):
        # A single label ("intranet", "redis") resolves through the search domains to our own
        # network; a company website is never one.
        raise PermanentError(f"refused single-label host {host!r}")
    # httpx prints "https://acme.example" for the root; spell it with its slash.
    return url.copy_with(path="/") if url.path == "/" else url


class _Inflater:
    """gzip/deflate decoding that never produces more than it is asked for (no zip bombs)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._started = False
        # 32 + 15: accept a gzip or a zlib header.
        self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes, max_length: int) -> bytes:
        if not self._started and self._encoding == "deflate":
            self._started = True
            try:
                return self._inflate.decompress(chunk, max_length)
            except zlib.error:
                # Many servers send "deflate" as a raw stream, without the zlib header.
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inflate.decompress(chunk, max_length)


# Codecs Python has but no web page is in: slow on hostile input, or not charsets at all.
_NOT_WEB_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape"})


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        codec = codecs.lookup(name)
    except LookupError:
        return None
    return None if codec.name in _NOT_WEB_CHARSETS else codec.name


def _decode(body: bytes, charset: str | None) -> str:
    """Text in the header's charset, else the page's <meta charset>, else UTF-8; never raises."""
    name = _codec(charset)
    if name is None:
        sniffed = _META_CHARSET.search(body[:2048])
        name = _codec(sniffed.group(1).decode("ascii", "replace")) if sniffed else None
        # A <meta> we could read as ASCII cannot be in UTF-16 (the HTML spec's rule).
        if name is not None and name.startswith(("utf-16", "utf-32")):
            name = None
    try:
        return body.decode(name or "utf-8", errors="replace")
    except (LookupError, UnicodeError):
        # rot13 or base64 (codecs, not text encodings) raise LookupError; a few text codecs
        # refuse some inputs even with "replace".
        return body.decode("utf-8", errors="replace")


class WebsiteFetcher:
    """GETs a company's page: redirects followed by hand, body capped, outcome classified."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_bytes: int = 512_000,
        max_redirects: int = 3,
        timeout: float = 10.0,
    ) -> None:
        self._http = http
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._timeout = timeout

    async def fetch(self, url: str) -> FetchedPage:
        """The page at `url` after redirects; 4xx pages are returned, not raised.

        Raises PermanentError for a URL we refuse (AddressRefused for a non-public address) or
        too many redirects, TransientError for timeouts, connection errors, 429 and 5xx.
        `timeout` bounds the whole fetch, redirects and body included, so a server dribbling
        bytes cannot hold a worker slot.
        """
        target = checked_url(url)
        try:
            async with asyncio.timeout(self._timeout):
                return await self._follow(target)
        except TimeoutError as exc:
            raise TransientError(f"{target.host}: no page within {self._timeout:g}s") from exc

    async def _follow(self, url: httpx.URL) -> FetchedPage:
        for _ in range(self._max_redirects + 1):
            request = self._http.build_request(
                "GET",
                url,
                headers={
                    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                    # Only what _Inflater can decode within the cap.
                    "Accept-Encoding": "gzip, deflate",
                },
                timeout=httpx.Timeout(self._timeout),
            )
            try:
                response = await self._http.send(request, stream=True, follow_redirects=False)
            except httpx.TimeoutException as exc:
                raise TransientError(f"{url.host}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"{url.host}: {type(exc).__name__}: {exc}") from exc
            try:
                if response.has_redirect_location:
                    location = response.headers["Location"]
                    try:
                        url = checked_url(response.url.join(location))
                    except httpx.InvalidURL as exc:
                        raise PermanentError(f"{url.host}: bad redirect {location!r}") from exc
                    continue
                return await self._page(response)
            finally:
                await response.aclose()
        raise PermanentError(f"{url.host}: more than {self._max_redirects} redirects")

    async def _page(self, response: httpx.Response) -> FetchedPage:
        status = response.status_code
        host = response.url.host
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RateLimited(f"{host}: HTTP 429", retry_after=retry_after)
        if status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(f"{host}: HTTP {status}", retry_after=retry_after)
        header = response.headers.get("Content-Type", "")
        media = header.split(";", 1)[0].strip().lower() or None
        text, truncated = "", False
        # A missing Content-Type is common on small hand-made sites; read it as HTML.
        if media is None or media in HTML_TYPES:
            try:
                body, truncated = await self._read(response)
            except httpx.TimeoutException as exc:
                raise TransientError(f"{host}: timed out reading ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"{host}: {type(exc).__name__}: {exc}") from exc
            text = _decode(body, response.charset_encoding)
        return FetchedPage(
            final_url=str(response.url),
            status=status,
            content_type=media,
            text=text,
            truncated=truncated,
        )

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        """At most max_bytes of decoded body, and whether there was more.

        Reads the raw stream and inflates it here with a bound on each step: httpx's own
        decoder inflates a whole network chunk at once, 1000:1 for a crafted gzip.
        """
        limit = self._max_bytes
        try:
            # A response built in memory (MockTransport, the sample stand-in) arrives read and
            # decoded already; only a network response is left to stream.
            content = response.content
        except httpx.ResponseNotRead:
            pass
        else:
            return content[:limit], len(content) > limit
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            inflater = _Inflater("deflate" if encoding == "deflate" else "gzip")
        else:
            return b"", False  # an encoding we did not ask for and cannot bound
        body = bytearray()
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if inflater is None:
                body += chunk
            else:
                try:
                    body += inflater.feed(chunk, limit + 1 - len(body))
                except zlib.error:
                    return bytes(body[:limit]), True  # corrupt past here: keep what was read
            # A compressed stream longer than the cap is pathological: stop reading it too.
            if len(body) > limit or received > limit:
                return bytes(body[:limit]), True
        return bytes(body), False
