"""Reading a fetched page: the few facts scoring and outreach use. Pure; no I/O."""

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser

from jobs.models import WebsiteInfo
from jobs.web.fetch import FetchedPage

MAX_TITLE = 200
MAX_DESCRIPTION = 500
MAX_EMAILS = 20

_EMAIL = re.compile(
    r"(?<![\w.%+-])"
    r"[a-z0-9](?:[a-z0-9._%+-]{0,62}[a-z0-9_%+-])?"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
    r"(?![\w-])",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")

# "logo@2x.png" looks like an address to a regex: retina image names and other file names.
_FILE_SUFFIXES = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff", "css",
     "js", "mjs", "json", "map", "pdf", "mp4", "webm", "woff", "woff2", "ttf", "eot"}
)  # fmt: skip
# Placeholders from templates and form hints, never a real inbox.
_PLACEHOLDER_DOMAINS = frozenset(
    {"example.com", "example.org", "example.net", "domain.com", "yourdomain.com", "sentry.io"}
)
_INVISIBLE = ["script", "style", "noscript", "template", "svg"]


def _clean(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    collapsed = _WHITESPACE.sub(" ", text).strip()
    return collapsed[:limit].rstrip() or None


def _meta(tree: LexborHTMLParser, *keys: str) -> str | None:
    """The first non-empty content of a <meta name|property=key>, trying keys in order."""
    contents: dict[str, str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        key = (attrs.get("name") or attrs.get("property") or "").strip().lower()
        content = attrs.get("content")
        if key in keys and content and content.strip() and key not in contents:
            contents[key] = content
    return next((contents[k] for k in keys if k in contents), None)


def _has_contact_form(tree: LexborHTMLParser) -> bool:
    for form in tree.css("form"):
        if "contact" in (form.attributes.get("action") or "").lower():
            return True
        if form.css_first("textarea") is not None:
            return True
        for field in form.css("input"):
            if (field.attributes.get("type") or "").strip().lower() == "email":
                return True
    return False


def _is_junk(email: str) -> bool:
    domain = email.rsplit("@", 1)[1]
    return domain.rsplit(".", 1)[1] in _FILE_SUFFIXES or any(
        domain == d or domain.endswith("." + d) for d in _PLACEHOLDER_DOMAINS
    )


def _mailto_addresses(tree: LexborHTMLParser) -> list[str]:
    found: list[str] = []
    for link in tree.css("a[href]"):
        href = (link.attributes.get("href") or "").strip()
        if href[:7].lower() != "mailto:":
            continue
        # mailto:a@x.example,b@x.example?subject=Hi, percent-encoded
        recipients = unquote(href[7:].split("?", 1)[0])
        found.extend(m.group(0) for m in _EMAIL.finditer(recipients))
    return found


def _visible_text(tree: LexborHTMLParser) -> str:
    # On a copy: the caller's tree keeps its scripts and forms.
    visible = tree.clone()
    visible.strip_tags(_INVISIBLE)
    return visible.body.text(separator=" ") if visible.body is not None else ""


def _title(tree: LexborHTMLParser) -> str | None:
    # head > title first: an inline <svg> carries its own <title> elements.
    node = tree.css_first("head > title") or tree.css_first("title")
    return _clean(node.text() if node is not None else None, MAX_TITLE)


def _emails(tree: LexborHTMLParser) -> tuple[str, ...]:
    candidates = _mailto_addresses(tree)
    candidates.extend(m.group(0) for m in _EMAIL.finditer(_visible_text(tree)))
    kept: dict[str, None] = {}
    for candidate in candidates:
        email = candidate.lower()
        if not _is_junk(email):
            kept.setdefault(email)
        if len(kept) == MAX_EMAILS:
            break
    return tuple(kept)


def read_page(page: FetchedPage) -> WebsiteInfo:
    """What the page says about the company; an empty or non-HTML page gives only url/status."""
    if not page.text.strip():
        return WebsiteInfo(url=page.final_url, status=page.status)
    tree = LexborHTMLParser(page.text)
    return WebsiteInfo(
        url=page.final_url,
        status=page.status,
        title=_title(tree),
        description=_clean(_meta(tree, "description", "og:description"), MAX_DESCRIPTION),
        has_contact_form=_has_contact_form(tree),
        emails=_emails(tree),
    )


# A domain seller's or parking service's page: its words, or its script, anywhere on the page.
_PARKED = re.compile(
    r"domain (?:name )?(?:is|may be) for sale|buy this domain|this domain (?:is parked|has been "
    r"registered)|domain parking|parked (?:free|domain)|sedoparking|parkingcrew|bodis\.com"
    r"|hugedomains|afternic|dan\.com/buy|parking\.[a-z0-9.-]+/park",
    re.IGNORECASE,
)
# A server's or host's stock page, by its title: a real company's title never reads so.
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:welcome to nginx|apache2? [\w ]*default page|it works|test page for|index of /|"
    r"(?:website |site |page )?(?:coming soon|under construction)|account suspended|"
    r"default web ?site page|future home of|domain (?:not|is not) configured|site not found)",
    re.IGNORECASE,
)


def _host(url_or_domain: str) -> str:
    host = urlsplit(url_or_domain if "//" in url_or_domain else f"//{url_or_domain}").hostname
    return (host or "").rstrip(".").removeprefix("www.")


def _within(host: str, site: str) -> bool:
    return bool(site) and (host == site or host.endswith("." + site))


def not_own_page(page: FetchedPage, info: WebsiteInfo, own: Iterable[str]) -> str | None:
    """Why the page is not the company's own to quote (None when it is): an error status, a
    page on another domain than `own` (the company's domain and website), a parked domain or a
    host's placeholder."""
    if not 200 <= page.status < 300:
        return f"HTTP {page.status}"
    host = _host(page.final_url)
    if not any(_within(host, _host(site)) for site in own):
        return f"redirected to {host}"
    if _PARKED.search(page.text):
        return "a parked domain"
    if info.title and _PLACEHOLDER_TITLE.match(info.title):
        return f"a placeholder page ({info.title[:60]})"
    return None
