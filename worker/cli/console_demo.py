"""`console-demo` (`python3 dev.py console`): the demo pipeline with the console up, offline.

On the Redis `run` would use (embedded unless REDIS_URL is set): a worker in its own process
sending to an SMTP sink on loopback, today's run enqueued, and the console on a local port with
a demo sign-in printed, so a new user can watch the run on Today, open the drafts and approve
one into the sink. Ctrl-C stops the console, then the worker.
"""

import contextlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

import click
from pydantic import SecretStr

from settings import ConsoleSettings, Settings
from worker.cli.base import CliState, cli, pass_state, run_async
from worker.cli.demo import run_target
from worker.cli.output import EXIT_OK, Output
from worker.cli.outreach_demo import mail_dir_option
from worker.client import QueueClient
from worker.local.embedded import DEFAULT_HOST
from worker.local.mailsink import MailSink, clear_messages
from worker.registry import DAILY_JOB, job_specs

DEMO_USER = "demo"
DEMO_LIMIT = 6  # drafts today: a page of them, as in the outreach demo


def worker_env(settings: Settings, mail: MailSink) -> dict[str, str]:
    """The worker's environment: this one's, on the demo's Redis and sink."""
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "PW_QUEUE_NAME": settings.queue_name,
        "PW_DAILY_LIMIT": str(DEMO_LIMIT),
        "PW_DAILY_CATCH_UP": "false",  # the demo enqueues today's run itself, whatever the hour
        "PW_METRICS_PORT": "0",
        "PW_SMTP__HOST": mail.host,
        "PW_SMTP__PORT": str(mail.port),
        "PW_SMTP__SECURITY": "none",
    }


async def enqueue_today(settings: Settings, out: Output) -> int:
    client = await QueueClient.connect(settings, specs=job_specs(settings), conn_retries=0)
    try:
        job_id = await client.enqueue(DAILY_JOB)
    finally:
        await client.close()
    out.info(f"enqueued today's run as {job_id}; a worker is taking it")
    return EXIT_OK


@cli.command("console-demo")
@click.option("--port", type=click.IntRange(1, 65_535), default=8080, show_default=True)
@mail_dir_option
@pass_state
def console_demo(state: CliState, port: int, mail_dir: Path) -> int:
    """Run today's pipeline with a worker and keep the console up with a demo sign-in."""
    from worker.console.passwords import hash_password
    from worker.console.serve import serve

    out = Output(as_json=False)
    cleared = clear_messages(mail_dir)
    password = secrets.token_urlsafe(12)
    with run_target(state.settings()) as target, MailSink(mail_dir) as mail:
        settings = target.settings.model_copy(
            update={
                "daily_limit": DEMO_LIMIT,
                "console": ConsoleSettings(
                    users=SecretStr(f"{DEMO_USER}:operator:{hash_password(password)}"),
                    session_secret=SecretStr(secrets.token_urlsafe(32)),
                ),
            }
        )
        out.info(target.description)
        earlier = f" ({cleared} of an earlier run removed)" if cleared else ""
        out.info(f"SMTP sink on {mail.host}:{mail.port}, messages kept in {mail_dir}/{earlier}")
        worker = subprocess.Popen(
            [sys.executable, "-m", "arq", "worker.WorkerSettings"],
            env=worker_env(settings, mail),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            run_async(enqueue_today(settings, out), redis_url=settings.redis_url)
            out.info(f"console: http://{DEFAULT_HOST}:{port}/")
            out.info(f"sign in as {DEMO_USER} with password {password}  (Ctrl-C stops it all)")
            # uvicorn shuts down on Ctrl-C, then passes it on: the demo ends normally.
            with contextlib.suppress(KeyboardInterrupt):
                serve(settings, host=DEFAULT_HOST, port=port)
        finally:
            # Ctrl-C reached the worker too (same process group); SIGTERM when it did not.
            try:
                worker.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                worker.terminate()
                worker.wait(timeout=30)
    out.info(f"stopped; messages in the sink: {mail.handler.delivered}")
    return EXIT_OK
