"""The short fuzz run of `make test`: schemathesis against every built service; any 5xx fails the suite.

The full run is `make fuzz`; both start the same stack (see fuzz/__main__.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_built_service_answers_a_fuzzed_request_with_a_server_error(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    command = [
        sys.executable,
        "-m",
        "fuzz",
        "--max-examples",
        "10",
        "--max-time",
        "0",
        "--phases",
        "examples,coverage,fuzzing",
    ]
    done = subprocess.run(
        [*command, "--quiet", "--summary-json", str(summary)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert summary.exists(), done.stdout[-5000:] + done.stderr[-5000:]
    results = {r["service"]: r for r in json.loads(summary.read_text())}
    sys.stdout.write(done.stdout[done.stdout.find("=== fuzz summary ===") :])
    assert set(results) == {"auth", "notifier", "pets", "reports", "chat", "matcher"}
    for service, result in results.items():
        assert result["requests"] >= 100, f"{service}: only {result['requests']} requests"
        server_errors = [f for f in result["failures"] if f["code"] == "ST101"]
        assert not server_errors, f"{service} answered 5xx: {server_errors}\n{done.stdout[-8000:]}"
    assert done.returncode == 0, done.stdout[-5000:]
