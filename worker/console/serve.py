"""Run the console under uvicorn (what `prospect-worker console` calls)."""

import uvicorn

from settings import Settings
from worker.console.app import create_app


def serve(settings: Settings, *, host: str, port: int) -> None:
    app = create_app(settings)  # refuses here, before binding, when it cannot sign anyone in
    uvicorn.run(
        app,
        host=host,
        port=port,
        # X-Forwarded-For/-Proto from the proxies named only: the audit log's address and the
        # HTTPS check behind a TLS proxy (Secure cookies).
        proxy_headers=True,
        forwarded_allow_ips=settings.console.forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )
