"""`make fuzz`: schemathesis, every check, against the OpenAPI of every built service of a running stack.

Starts a nats-server and the built services (as `pawgle.common.testing.stack` does for tests, Google's
keys and Resend faked by local servers), signs up one account per service, then runs `schemathesis run
--checks all` against each service's `/openapi.json`, bounded by `--max-examples` per operation and
`--max-time` per service. Prints, per service, the requests sent, the server errors and every check
failure. Behaviour that is intended but that an OpenAPI schema cannot express (a link token that is
well-formed but unknown is a 400) is listed, with its reason, in `fuzz/schemathesis.toml`.

Exit status: 1 if any service answered a 5xx (or, with `--strict`, on any check failure).

    python -m fuzz                       # the full run (make fuzz)
    python -m fuzz --max-examples 10 --max-time 0 --phases examples,coverage,fuzzing   # `make test`'s run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.fake_http import FakeRequest, FakeResponse, fake_http_server
from pawgle.common.testing.stack import BUILT_SERVICES, Stack, running_stack, sign_up

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
FORWARD_SECRET = "fuzz-forward-secret-0123456789"
# Auth last: fuzzing it deletes the account whose token it holds (DELETE /api/auth/account/).
ORDER = ("notifier", "pets", "reports", "chat", "matcher", "auth")


@dataclass
class ServiceFuzzResult:
    service: str
    requests: int
    server_errors: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    exit_code: int = 0

    def summary(self) -> str:
        lines = [f"{self.service}: {self.requests} requests, {self.server_errors} server errors (5xx)"]
        for failure in self.failures:
            operations = ", ".join(failure["operations"])
            lines.append(f"  {failure['code']} {failure['title']} x{failure['count']}: {operations}")
        if not self.failures:
            lines.append("  no check failures")
        return "\n".join(lines)


def _google_keys(_request: FakeRequest) -> FakeResponse:
    """Google's key set, empty: every Google token is then an honest 401, not a 500 for a missing config."""
    return FakeResponse(200, {"keys": []})


@contextmanager
def fuzz_stack(data_dir: Path) -> Iterator[Stack]:
    """nats-server, fake Google keys and the built services, all on free loopback ports."""
    server = NatsServer(data_dir / "nats", log_file=data_dir / "nats.log").start()
    try:
        with fake_http_server(_google_keys) as google:
            overrides = {
                "auth": {"google_client_id": "fuzz.apps.googleusercontent.com", "google_jwks_url": f"{google}/certs"},
                "notifier": {"forward_secret": FORWARD_SECRET},
            }
            with running_stack(nats_url=server.url, data_dir=data_dir / "data", overrides=overrides) as stack:
                yield stack
    finally:
        server.stop()


def fuzz_service(
    stack: Stack,
    service: str,
    *,
    max_examples: int,
    max_time_s: int | None,
    phases: str,
    report_dir: Path,
    seed: int | None,
) -> ServiceFuzzResult:
    """Run schemathesis with every check against one service and read its JSON report."""
    token = sign_up(stack)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        stack.url(service, "/openapi.json"),
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        f"X-Forward-Secret: {FORWARD_SECRET}",
        "--max-examples",
        str(max_examples),
        "--phases",
        phases,
        "--report",
        "json",
        "--report-dir",
        str(report_dir / service),
        "--request-timeout",
        "10",
    ]
    if max_time_s:
        command += ["--max-time", str(max_time_s)]
    if seed is not None:
        command += ["--seed", str(seed)]
    # Run from the report folder: schemathesis keeps a cache folder in its working directory.
    (report_dir / service).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=report_dir / service)
    reports = sorted((report_dir / service).glob("*.json"))
    if not reports:
        raise RuntimeError(f"schemathesis wrote no report for {service}:\n{done.stdout}\n{done.stderr}")
    report = json.loads(reports[-1].read_text())
    failures = report.get("failures", [])
    server_errors = sum(f["count"] for f in failures if f["code"] == "ST101")
    return ServiceFuzzResult(
        service=service,
        requests=int(report["test_cases"]["generated"]),
        server_errors=server_errors,
        failures=failures,
        output=done.stdout + done.stderr,
        exit_code=done.returncode,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200, help="test cases per operation and phase")
    parser.add_argument(
        "--max-time", type=int, default=150, help="seconds per service; fuzzing repeats until they are spent (0: once)"
    )
    parser.add_argument("--services", default=",".join(BUILT_SERVICES), help="comma-separated")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful", help="schemathesis phases")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quiet", action="store_true", help="only the per-service summary")
    parser.add_argument("--strict", action="store_true", help="fail on any check failure, not only on 5xx")
    parser.add_argument("--summary-json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    wanted = [name for name in ORDER if name in args.services.split(",")]
    results: list[ServiceFuzzResult] = []
    with tempfile.TemporaryDirectory(prefix="pawgle-fuzz-") as tmp, fuzz_stack(Path(tmp)) as stack:
        for service in wanted:
            started = time.monotonic()
            result = fuzz_service(
                stack,
                service,
                max_examples=args.max_examples,
                max_time_s=args.max_time or None,
                phases=args.phases,
                report_dir=Path(tmp) / "reports",
                seed=args.seed,
            )
            results.append(result)
            if not args.quiet:
                sys.stdout.write(result.output + "\n")
            sys.stdout.write(f"({service} fuzzed in {time.monotonic() - started:.1f} s)\n")
    sys.stdout.write("\n=== fuzz summary ===\n" + "\n".join(r.summary() for r in results) + "\n")
    if args.summary_json:
        doc = [
            {"service": r.service, "requests": r.requests, "server_errors": r.server_errors, "failures": r.failures}
            for r in results
        ]
        args.summary_json.write_text(json.dumps(doc, indent=2))
    failed = any(r.server_errors for r in results) or (args.strict and any(r.failures for r in results))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
