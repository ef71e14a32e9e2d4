"""read_page on small HTML samples."""

from jobs.models import WebsiteInfo
from jobs.web.fetch import FetchedPage
from jobs.web.page import not_own_page, read_page


def page(html: str, *, status: int = 200, content_type: str | None = "text/html") -> FetchedPage:
    return FetchedPage(
        final_url="https://acme.example/",
        status=status,
        content_type=content_type,
        text=html,
        truncated=False,
    )


COMPANY_HOME = """<!doctype html>
<html><head>
  <title>
     Acme   Robotics |
     Warehouse automation
  </title>
  <meta name="Description" content="  Robots that   pick, pack and ship. ">
  <meta property="og:description" content="Not this one">
  <link rel="icon" href="/favicon@2x.png">
  <script>var support = "js-only@acme.example";</script>
</head>
<body>
  <img src="/img/logo@2x.png" alt="">
  <p>Sales: <a href="mailto:Sales@Acme.example?subject=Hello">write to us</a></p>
  <p>Press: press@acme.example, or sales@acme.example again. Icon: logo@2x.png</p>
  <p>Support&#64;acme.example answers within a day.</p>
  <style>.x{background:url(bg@3x.webp)}</style>
  <form action="/newsletter"><input type="text" name="q"></form>
</body></html>"""


def test_company_home() -> None:
    info = read_page(page(COMPANY_HOME))
    assert info == WebsiteInfo(
        url="https://acme.example/",
        status=200,
        title="Acme Robotics | Warehouse automation",
        description="Robots that pick, pack and ship.",
        has_contact_form=False,
        emails=("sales@acme.example", "press@acme.example", "support@acme.example"),
    )


def test_og_description_is_the_fallback() -> None:
    info = read_page(page('<meta property="og:description" content="Made in Lyon.">'))
    assert info.description == "Made in Lyon."
    assert info.title is None


def test_title_is_capped_at_200_chars() -> None:
    info = read_page(page(f"<title>{'word ' * 100}</title>"))
    assert info.title is not None
    assert len(info.title) <= 200
    assert info.title.startswith("word word")


def test_svg_title_is_not_the_page_title() -> None:
    html = "<html><head><title>Real</title></head><body><svg><title>Icon</title></svg></body>"
    assert read_page(page(html)).title == "Real"


def test_contact_form_by_email_input() -> None:
    html = '<form action="/send"><input type="EMAIL" name="from"><button>Go</button></form>'
    assert read_page(page(html)).has_contact_form is True


def test_contact_form_by_textarea() -> None:
    assert read_page(page("<form><textarea name='msg'></textarea></form>")).has_contact_form


def test_contact_form_by_action() -> None:
    html = '<form method="post" action="https://acme.example/Contact-Us"><input name="n"></form>'
    assert read_page(page(html)).has_contact_form is True


def test_search_form_is_not_a_contact_form() -> None:
    html = '<form action="/search"><input type="search" name="q"></form><textarea></textarea>'
    assert read_page(page(html)).has_contact_form is False


def test_mailto_with_several_recipients_and_encoding() -> None:
    html = '<a href="MAILTO:a%40acme.example,b@acme.example?cc=c@acme.example">mail</a>'
    assert read_page(page(html)).emails == ("a@acme.example", "b@acme.example")


def test_junk_and_placeholders_are_dropped() -> None:
    html = (
        "<p>hero@2x.jpg sprite@3x.svg you@example.com name@yourdomain.com "
        "abc123@o1.ingest.sentry.io real.person+tag@acme.example</p>"
    )
    assert read_page(page(html)).emails == ("real.person+tag@acme.example",)


def test_at_most_20_emails() -> None:
    html = "<p>" + " ".join(f"person{i}@acme.example" for i in range(30)) + "</p>"
    emails = read_page(page(html)).emails
    assert len(emails) == 20
    assert emails[0] == "person0@acme.example"
    assert emails[-1] == "person19@acme.example"


def test_non_html_page_gives_only_url_and_status() -> None:
    info = read_page(page("", status=200, content_type="application/pdf"))
    assert info == WebsiteInfo(url="https://acme.example/", status=200)


def test_404_page_is_still_read() -> None:
    info = read_page(page("<title>Page not found</title>", status=404))
    assert (info.status, info.title) == (404, "Page not found")


def test_broken_html_does_not_raise() -> None:
    info = read_page(page("<html><title>Half</title><body><p>info@acme.example<div><b></p"))
    assert (info.title, info.emails) == ("Half", ("info@acme.example",))


# --- whose page it is -----------------------------------------------------------------------

OWN = ("acme.example", "https://www.acme.example/home")


def whose(html: str, *, url: str = "https://acme.example/", status: int = 200) -> str | None:
    fetched = FetchedPage(
        final_url=url, status=status, content_type="text/html", text=html, truncated=False
    )
    return not_own_page(fetched, read_page(fetched), OWN)


def test_the_companys_own_page_on_its_domain_or_a_subdomain() -> None:
    assert whose(COMPANY_HOME) is None
    assert whose(COMPANY_HOME, url="https://www.acme.example/home") is None
    assert whose(COMPANY_HOME, url="https://shop.acme.example./") is None


def test_error_pages_foreign_hosts_parked_domains_and_placeholders_are_not_theirs() -> None:
    assert whose("<title>Forbidden</title>", status=403) == "HTTP 403"
    assert whose(COMPANY_HOME, url="https://notacme.example/") == "redirected to notacme.example"
    assert whose(COMPANY_HOME, url="https://acme.example.evil.example/") == (
        "redirected to acme.example.evil.example"
    )
    parked_script = '<title>acme</title><script src="https://sedoparking.com/x.js"></script>'
    assert whose(parked_script) == "a parked domain"
    assert whose("<title>acme.example</title><p>This domain may be for sale!</p>") == (
        "a parked domain"
    )
    for title in ("Welcome to nginx!", "Coming Soon", "Apache2 Ubuntu Default Page: It works"):
        assert whose(f"<title>{title}</title>") == f"a placeholder page ({title})"
    # A real page that mentions what is coming is still the company's own.
    assert whose("<title>Acme | New robots coming soon</title>") is None
