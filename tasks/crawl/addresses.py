"""Which addresses the crawler connects to: public ones, and the non-public networks a config allow-lists (SSRF).

Links, redirects and DNS answers are chosen by whoever runs a site. Unchecked, a crawl can be steered
at the cloud metadata service (169.254.169.254), this machine's own services (127.0.0.1:5000 is the
MLflow UI) or the office network (10.0.0.0/8). The check runs where the socket is opened, on the
addresses the host name resolved to, and the socket is opened to the address that was checked: a
name that answers differently on a second lookup (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

import httpcore
import httpx

Refusal = Literal["unspecified", "loopback", "link-local", "multicast", "private", "shared", "reserved", "not global"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(OSError):
    """A host that resolves only to addresses the crawl may not connect to."""


def parse_network(value: str) -> IpNetwork:
    """Return the network ``value`` names (an address alone is a network of one); raise ValueError."""
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError as e:
        raise ValueError(f"{value!r} is not an IP network (write 127.0.0.1/32, 10.0.0.0/8 or fd00::/8)") from e


@lru_cache(maxsize=64)
def _networks(allowed: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(parse_network(n) for n in allowed)


def address_refusal(address: str | IpAddress, allowed: Sequence[str] = ()) -> Refusal | None:
    """Return why the crawler must not connect to ``address``, or None when it is public or allow-listed.

    >>> address_refusal("169.254.169.254")
    'link-local'
    >>> address_refusal("127.0.0.1", ["127.0.0.1/32"]) is None
    True
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):  # an IPv6 address that only carries an IPv4 one is judged as that one
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    if any(ip in net for net in _networks(tuple(allowed)) if net.version == ip.version):
        return None
    checks: tuple[tuple[Refusal, bool], ...] = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("shared", ip in ipaddress.ip_network("100.64.0.0/10")),  # carrier-grade NAT: not private, not global either
        ("reserved", ip.is_reserved),
        ("not global", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with one change: a TCP connection goes only to a permitted address."""

    def __init__(self, allowed: Iterable[str]):
        self.allowed = tuple(allowed)
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in infos))  # in the resolver's order, once each
        refused = [(a, address_refusal(a, self.allowed)) for a in addresses]
        permitted = [a for a, why in refused if why is None]
        if not permitted:
            named = ", ".join(f"{a} is {why}" for a, why in refused)
            raise BlockedAddress(f"{host} refused: {named}; allow it with allowed_networks")
        error: Exception | None = None
        for address in permitted:  # like socket.create_connection: the next address when one does not answer
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as e:
                error = e
        assert error is not None
        raise error

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedAddress(f"unix socket {path}: a crawl connects to TCP hosts only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(allowed: Iterable[str], limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """Return an httpx transport (no proxy, no environment settings) whose connections pass ``address_refusal``."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx takes no network backend; httpcore's pool does. Replace the pool httpx built with the same
    # pool over GuardedBackend (tests/test_crawl_faults.py fails if this ever stops taking effect).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(allowed),
    )
    return transport
