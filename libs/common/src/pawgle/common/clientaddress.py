"""The client's address, decided once at the edge and believed by the services only from the edge.

The gateway takes the address from the socket, or from X-Forwarded-For only when its peer is a configured
trusted proxy (the ingress, a load balancer), and passes it on in X-Pawgle-Client-Ip, always overwriting
what a client sent. It proves the request came through it with X-Pawgle-Edge, a secret shared with the
services (PAWGLE_EDGE_SECRET). A service believes X-Pawgle-Client-Ip only with that proof (or, when no
secret is configured, from peers it was told are the gateway); anything else, X-Forwarded-For included,
is ignored and the socket's peer is the client. So rotating X-Forwarded-For, through the gateway or on a
service's own port, never makes a caller look like someone else.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from fastapi import Request

CLIENT_IP_HEADER = "x-pawgle-client-ip"
EDGE_PROOF_HEADER = "x-pawgle-edge"


class TrustedProxies:
    """A set of networks: the peers whose forwarded address headers are believed."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(net, strict=False) for net in networks]

    def trusts(self, host: str | None) -> bool:
        """Whether `host` (an IP address) is in one of the networks."""
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def edge_client_ip(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """At the gateway: the client address, from X-Forwarded-For only through trusted proxies.

    Read right to left (each proxy appends the address it saw): the first hop that is not a trusted proxy
    is the client; what a client wrote at the left end is never believed past an untrusted hop.
    """
    if not forwarded_for or not trusted.trusts(peer):
        return peer or "unknown"
    address = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _is_ip(hop):
            break
        address = hop
        if not trusted.trusts(hop):
            break
    return address


def client_ip(request: Request, trusted: TrustedProxies | None = None) -> str:
    """In a service: the address the gateway decided when the request proves it came through it, else the peer."""
    peer = request.client.host if request.client else ""
    claimed = request.headers.get(CLIENT_IP_HEADER, "").strip()
    if claimed and _is_ip(claimed):
        settings = getattr(request.app.state, "settings", None)
        secret = getattr(settings, "edge_secret", None)
        if secret is not None:
            proof = request.headers.get(EDGE_PROOF_HEADER, "")
            if hmac.compare_digest(proof.encode(), secret.get_secret_value().encode()):
                return claimed
        else:
            trusted = trusted if trusted is not None else getattr(request.app.state, "trusted_proxies", None)
            if trusted is not None and trusted.trusts(peer):
                return claimed
    return peer or "unknown"
