"""Where a running `make run` stack listens, recorded in its data folder, and how tools find it again.

The launcher writes `<data dir>/stack.json` (readable by this user only: it holds each service's bus
credentials) once everything is up and removes it when it stops. `pawgle-ops` run from the checkout
reads it to reach the right bus, and refuses to guess: no recorded stack and no PAWGLE_NATS_URL in the
environment is an error, never a silent connection to whatever NATS listens on the default port.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STACK_FILE = "stack.json"


@dataclass
class ServiceEndpoint:
    """One service of the stack: its URL, bus URL (with its own credentials) and processes."""

    url: str
    bus_url: str
    workers: int = 1


@dataclass
class StackRecord:
    """What the launcher records about the running stack."""

    launcher_pid: int
    data_dir: str
    gateway: str
    bus: str
    services: dict[str, ServiceEndpoint] = field(default_factory=dict)

    def to_json(self) -> str:
        """The record as JSON."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> StackRecord:
        """Parse a record written by `to_json`."""
        doc: dict[str, Any] = json.loads(text)
        services = {name: ServiceEndpoint(**value) for name, value in doc.pop("services", {}).items()}
        return cls(services=services, **doc)


def stack_file(data_dir: Path) -> Path:
    """The record's path in a data folder."""
    return data_dir / STACK_FILE


def write_stack(record: StackRecord) -> Path:
    """Write the record into its data folder, readable by this user only."""
    path = stack_file(Path(record.data_dir))
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(record.to_json())
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_running_stack(data_dir: Path) -> StackRecord | None:
    """The recorded stack if its launcher still runs, else None (a stale record is ignored)."""
    path = stack_file(data_dir)
    try:
        record = StackRecord.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None
    return record if _alive(record.launcher_pid) else None


class NoStackFound(RuntimeError):
    """Neither a running stack nor an explicit bus URL: a tool must not guess one."""


def bus_environment(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment a tool needs to reach `service`'s bus: the explicit one, else the running stack's."""
    env = dict(os.environ if environ is None else environ)
    if env.get("PAWGLE_NATS_URL"):
        return {}
    data_dir = Path(env.get("PAWGLE_DATA_DIR", ".data")).expanduser().resolve()
    record = read_running_stack(data_dir)
    if record is None:
        raise NoStackFound(
            f"no running `make run` stack recorded in {stack_file(data_dir)} and no PAWGLE_NATS_URL set: "
            "start the stack, point PAWGLE_DATA_DIR at its data folder, or set PAWGLE_NATS_URL to the bus you mean"
        )
    endpoint = record.services.get(service)
    if endpoint is None:
        raise NoStackFound(f"the running stack in {record.data_dir} has no {service} service")
    return {"PAWGLE_NATS_URL": endpoint.bus_url, "PAWGLE_DATA_DIR": record.data_dir}
