"""`console-demo` (what `python3 dev.py console` calls): the console comes up on the asked port
with today's run under way, the sign-in it prints works, a draft approved there lands in the
demo's mail sink, and Ctrl-C stops it all cleanly."""

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from worker.local.embedded import DEFAULT_HOST, free_port

from .test_cli import no_redis_env, start_cli

SIGN_IN = re.compile(r"sign in as (\S+) with password (\S+)")
DRAFT_ID = re.compile(r'name="draft_id" value="([^"]+)"')


def form_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


@pytest.mark.slow
def test_the_demo_console_takes_the_printed_sign_in_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    mail = tmp_path / "mail"
    demo = start_cli(no_redis_env(), "console-demo", "--port", str(port), "--mail-dir", str(mail))
    said: list[str] = []
    try:
        assert demo.stderr is not None
        while not (found := SIGN_IN.search("".join(said))):
            line = demo.stderr.readline()
            assert line, f"the demo ended before printing a sign-in: {''.join(said)}"
            said.append(line)
        user, password = found.groups()
        with httpx.Client(base_url=f"http://{DEFAULT_HOST}:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the console never answered"
                    time.sleep(0.05)
            form = client.get("/signin").text
            signed_in = client.post(
                "/signin",
                data={
                    "csrf_token": form_field(form, "csrf_token"),
                    "next": "/",
                    "user": user,
                    "password": password,
                },
            )
            assert signed_in.status_code == 303, signed_in.text
            today = client.get("/")
            assert today.status_code == 200
            assert user in today.text
            wrong = client.post("/signout", data={})  # no CSRF token: refused, still signed in
            assert wrong.status_code == 403
            # Today's drafts come up; one approved lands in the demo's mail sink.
            while not (draft := DRAFT_ID.search(page := client.get("/drafts").text)):
                assert time.monotonic() < deadline, "no draft to approve"
                time.sleep(0.2)
            approved = client.post(
                "/drafts/approve",
                data={"csrf_token": form_field(page, "csrf_token"), "draft_id": draft.group(1)},
            )
            assert approved.status_code == 200, approved.text
            while not list(mail.glob("*.eml")):
                assert time.monotonic() < deadline, "nothing reached the mail sink"
                time.sleep(0.2)
    finally:
        demo.send_signal(signal.SIGINT)
        _, rest = demo.communicate(timeout=60)
    assert demo.returncode == 0, "".join(said) + rest
    assert "stopped; messages in the sink: 1" in rest
