"""`pawgle-serve [SERVICE]`: run one service's app under uvicorn; the command of every service image.

The service is the first argument, else PAWGLE_SERVICE (the image sets it). It listens on PAWGLE_HOST
(default 127.0.0.1; the image sets 0.0.0.0) and PAWGLE_LISTEN_PORT (default 8080). uvicorn.run() does not
read the UVICORN_* variables the `uvicorn` command reads, so the two the images set are honoured here.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import uvicorn

SERVICES = ("auth", "pets", "reports", "chat", "embeddings", "matcher", "notifier", "gateway")


def _fail(message: str) -> None:
    sys.stderr.write(f"pawgle-serve: {message}\n")
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    service = args[0] if args else os.environ.get("PAWGLE_SERVICE", "")
    if service not in SERVICES:
        what = f"unknown service {service!r}" if service else "no service named"
        _fail(f"{what}: pass one of {', '.join(SERVICES)} as the argument or in PAWGLE_SERVICE")
    if importlib.util.find_spec(f"pawgle.{service}") is None:
        _fail(f"the {service} service is not installed here (pip install services/{service})")
    if service == "gateway":
        # Caddy in front and its Python companion (or the Python relay alone, GATEWAY_ENGINE=python).
        importlib.import_module("pawgle.gateway.edge").main()
        return
    port = os.environ.get("PAWGLE_LISTEN_PORT", "8080")
    if not port.isdigit() or not 0 < int(port) < 65536:
        _fail(f"PAWGLE_LISTEN_PORT must be a port number (1-65535), got {port!r}")
    drain = os.environ.get("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "")
    if drain and not drain.isdigit():
        _fail(f"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN must be whole seconds, got {drain!r}")
    uvicorn.run(
        f"pawgle.{service}.main:create_app",
        factory=True,
        host=os.environ.get("PAWGLE_HOST", "127.0.0.1"),
        port=int(port),
        access_log=os.environ.get("UVICORN_ACCESS_LOG", "true").lower() not in ("false", "0", "no", "off"),
        timeout_graceful_shutdown=int(drain) if drain else None,
        # The client address is the gateway's decision (X-Pawgle-Client-Ip with its proof): uvicorn must
        # not rewrite it from an X-Forwarded-For that anyone able to reach this port could send.
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
