"""Where the operator may send a request that a namespace's object names: the admin's allow-lists for cloud
endpoints and webhooks, and the address rules for webhooks (no private, loopback, link-local, metadata or
other internal address; the name resolved once and the connection pinned to the address checked).

Pure checks, plus one resolver call; nothing here sends a request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

# https on the clouds' own domains, the hosts the official SDKs' endpoint tables name: pai-dsw.REGION.aliyuncs.com
# and sts[.REGION].aliyuncs.com (alibabacloud_pai_dsw20220101 / alibabacloud_credentials), modelarts.REGION.
# myhuaweicloud.com|cn, roma.REGION.myhuaweicloud.com and iam[.REGION].myhuaweicloud.com (huaweicloudsdk*
# region tables, huaweicloudsdkcore IamHelper).
DEFAULT_ALLOWED_ENDPOINTS: tuple[str, ...] = (
    r"^https://([a-z0-9-]+\.)+aliyuncs\.com:443$",
    r"^https://([a-z0-9-]+\.)+myhuaweicloud\.(com|cn):443$",
)


class NotAllowed(ValueError):
    """A URL the admin's rules refuse. The message names the rule, never the whole URL (it may hold a secret)."""


def origin(url: str) -> str:
    """`scheme://host:port` of an http(s) URL, the port always written (IPv6 hosts in brackets). A URL with
    userinfo (`user@host`) is refused: what is left of the @ is not the host it connects to."""
    parts = _split(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{_port(parts)}"


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise NotAllowed("not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise NotAllowed("not an http(s) URL with a host")
    if "@" in parts.netloc:
        raise NotAllowed("a URL with userinfo (user@host) is refused")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port if parts.port is not None else DEFAULT_PORTS[parts.scheme]


@dataclass(frozen=True)
class AllowList:
    r"""Regular expressions matched against the whole `origin(url)` (re.fullmatch: an unanchored `aliyuncs\.com`
    does not admit `aliyuncs.com.evil.example`)."""

    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, expressions: Iterable[str]) -> AllowList:
        return cls(tuple(re.compile(e) for e in expressions))

    def allows(self, url: str) -> bool:
        where = origin(url)
        return any(p.fullmatch(where) for p in self.patterns)


def endpoint_allow_list(expressions: Sequence[str]) -> AllowList:
    """The admin's --allowed-endpoint expressions; none given: https on the clouds' own domains."""
    return AllowList.of(expressions or DEFAULT_ALLOWED_ENDPOINTS)


def require_allowed(url: str, allowed: AllowList, what: str) -> None:
    """NotAllowed unless the admin allows `url` for a namespace's object."""
    try:
        allowed_here = allowed.allows(url)
    except NotAllowed as e:
        raise NotAllowed(f"{what}: {e}") from None
    if not allowed_here:
        raise NotAllowed(f"{what} {origin(url)} is not allowed by the operator's --allowed-endpoint")


# Addresses a webhook may not reach: every range Python does not count as global, plus CGNAT (Alibaba's
# metadata service is 100.100.100.200), named here so the table reads as the rule.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # unspecified / "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT: Alibaba Cloud's metadata address 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: most clouds' metadata address 169.254.169.254
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible addresses
        "::ffff:0:0:0/96",  # SIIT IPv4-translated addresses ::ffff:0:a.b.c.d (RFC 2765): a translator to anywhere
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): a site's own translator, to its own networks
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)


def blocked(address: str) -> str | None:
    """Why a webhook may not connect to `address` (an IP literal), or None when it is a public address."""
    ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            why = blocked(str(embedded))
            return f"{why} (IPv4 inside IPv6)" if why else None
        if ip in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 of an IPv4 address
            why = blocked(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
            return f"{why} (NAT64)" if why else None
    for network in BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"an internal address ({network})"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Pinned:
    """Where to connect: the checked address, with the name kept for TLS (SNI, certificate) and Host."""

    url: str  # the URL with the host replaced by the address
    hostname: str  # for TLS: SNI and the certificate check
    host_header: str
    address: str


Lookup = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def pin_webhook(url: str, allowed: AllowList, lookup: Lookup = resolve) -> Pinned:
    """Check a webhook URL and resolve it once. Allowed by the admin's --allowed-webhook: any scheme and address.
    Otherwise https only, and every address the name resolves to must be public (a name with one internal
    address is refused whole: DNS may answer it next time)."""
    parts = _split(url)
    host, port = parts.hostname or "", _port(parts)
    exception = allowed.allows(url)
    if not exception and parts.scheme != "https":
        raise NotAllowed("webhooks must be https (or allowed by the operator's --allowed-webhook)")
    try:
        addresses = [host] if _is_ip(host) else await lookup(host, port)
    except OSError:
        raise NotAllowed("the webhook's host name does not resolve") from None
    if not addresses:
        raise NotAllowed("the webhook's host name does not resolve")
    if not exception:
        for address in addresses:
            why = blocked(address)
            if why:
                raise NotAllowed(f"the webhook's host is {why}")
    address = addresses[0]
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{port}"
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = host if port == DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    return Pinned(pinned, host, host_header, address)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True
