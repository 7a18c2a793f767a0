"""The client address the Python relay decides, and the headers that carry it to the services."""

from __future__ import annotations

from starlette.types import Scope

from pawgle.common.clientaddress import CLIENT_IP_HEADER, EDGE_PROOF_HEADER, TrustedProxies, edge_client_ip
from pawgle.gateway.asgi import header_value
from pawgle.gateway.config import Settings


class EdgeAddress:
    """The client address the gateway decides, and the headers that carry it to the services."""

    def __init__(self, settings: Settings) -> None:
        self.trusted = TrustedProxies(settings.trusted_proxy_networks)
        secret = settings.edge_secret.get_secret_value() if settings.edge_secret is not None else None
        self.proof = [(EDGE_PROOF_HEADER.encode(), secret.encode())] if secret else []

    def client_ip(self, scope: Scope) -> str:
        """The socket's peer, or the client behind a trusted proxy."""
        peer = (scope.get("client") or ("unknown", 0))[0]
        forwarded = header_value(scope, b"x-forwarded-for")
        return edge_client_ip(peer, forwarded.decode("latin-1") if forwarded else None, self.trusted)

    def proof_headers(self, client_ip: bytes) -> list[tuple[bytes, bytes]]:
        """X-Pawgle-Client-Ip and the edge's proof, always written by the gateway."""
        return [(CLIENT_IP_HEADER.encode(), client_ip), *self.proof]
