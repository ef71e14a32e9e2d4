"""`arq tests.support.loopback_sites.WorkerSettings`: the production worker
(`worker.WorkerSettings`, settings from the environment) whose website fetches resolve every
`.test` host (RFC 2606's testing names, which no real resolver answers) to loopback, so a
company's website can be a test's own server (tests.support.fake_providers `serve_site`), on the
port named by TEST_SITES_PORT (websites are fetched on 80 and 443 alone, so that one port is let
through too). Pair it with PW_WEB__ALLOW_PRIVATE=true: the address guard still checks the
address it resolved to."""

import os
from typing import Any

TEST_SUFFIX = ".test"
PORT_VARIABLE = "TEST_SITES_PORT"
LOOPBACK = "127.0.0.1"


def __getattr__(name: str) -> Any:
    if name != "WorkerSettings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import worker
    from jobs.web import fetch, netguard

    system = netguard.SystemResolver.resolve

    async def resolve(self: netguard.SystemResolver, host: str, port: int) -> list[str]:
        if host.lower().rstrip(".").endswith(TEST_SUFFIX):
            return [LOOPBACK]
        return await system(self, host, port)

    # The class every guarded transport makes its resolver from; this process is a test's.
    netguard.SystemResolver.resolve = resolve  # type: ignore[method-assign]
    fetch.ALLOWED_PORTS = fetch.ALLOWED_PORTS | {int(os.environ[PORT_VARIABLE])}
    return worker.WorkerSettings
