"""The Kubernetes Ingress paths of the gateway, generated from the route table (routes.py).

Only the public API (every row of the table) and `/media/` reach the gateway through the ingress; its
own operational routes (/healthz, /readyz) and every /metrics stay inside the cluster. A literal row
becomes two Exact paths (with and without its trailing slash), a row with a placeholder or a subtree a
Prefix path up to its last literal segment; the gateway then decides each path exactly as it does for
`make run`. `python -m pawgle.gateway.ingress` prints the `paths:` block of deploy/k8s/ingress.yaml; the
deploy tests fail when the file and the table disagree.
"""

from __future__ import annotations

import re
import sys

from pawgle.gateway.routes import ROUTE_TABLE

MEDIA_PREFIX = "/media/"


def _covered(path: str, prefix: str) -> bool:
    """Whether a Prefix path matches `path` (Kubernetes compares whole segments, ignoring a trailing slash)."""
    path, prefix = path.rstrip("/"), prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def ingress_paths() -> list[tuple[str, str]]:
    """(path, pathType) pairs, sorted: what the Ingress sends to the gateway."""
    exact: set[str] = set()
    prefixes: set[str] = {MEDIA_PREFIX}
    for template, _service in ROUTE_TABLE:
        head = re.split(r"\{|\*\*", template, maxsplit=1)[0]
        if head == template:
            exact |= {template, template.rstrip("/")}
        else:
            # Up to the last whole segment before the placeholder: `/api/auth/pets/{id}/qr/` -> `/api/auth/pets/`.
            prefixes.add(head[: head.rfind("/") + 1])
    # A path inside another Prefix path adds nothing.
    kept = {p for p in prefixes if not any(o != p and _covered(p, o) for o in prefixes)}
    paths = {(p, "Prefix") for p in kept}
    paths |= {(p, "Exact") for p in exact if not any(_covered(p, o) for o in kept)}
    return sorted(paths)


def paths_yaml(indent: str = "          ") -> str:
    """The `paths:` entries as they appear in deploy/k8s/ingress.yaml."""
    lines = []
    for path, kind in ingress_paths():
        lines += [
            f"{indent}- path: {path}",
            f"{indent}  pathType: {kind}",
            f"{indent}  backend:",
            f"{indent}    service:",
            f"{indent}      name: gateway",
            f"{indent}      port:",
            f"{indent}        name: http",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(paths_yaml())
