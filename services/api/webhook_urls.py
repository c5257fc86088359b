"""Which webhook URLs the service may call: the guard against server-side request forgery.

A webhook URL must be http or https, and its host must either be on ``api.webhook.allow_hosts`` or
resolve only to public addresses: not loopback, private, link-local (cloud metadata at 169.254.169.254),
shared (CGNAT), multicast, reserved, site-local or unspecified. An IPv4 address carried inside an IPv6
one (IPv4-mapped, 6to4, NAT64) is judged as that IPv4 address. The API checks at registration; the
webhook dispatcher checks again before every delivery and then connects to the very address it checked
(:meth:`WebhookTarget.pinned`), so a DNS answer that changes in between (DNS rebinding) cannot redirect
a delivery to an internal address. Redirects are not followed (httpx's default).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import httpx

FIELD = "delivery.webhook_url"
ALLOW_SETTING = "api.webhook.allow_hosts"
SCHEMES = ("http", "https")
_NAT64 = ip_network("64:ff9b::/96")

IPAddress = IPv4Address | IPv6Address


class WebhookUrlRefusedError(ValueError):
    """A webhook URL the service will not call; ``transient`` when only name resolution failed."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(f"{FIELD}: {reason}")
        self.reason = reason
        self.transient = transient


def embedded_ipv4(address: IPAddress) -> list[IPv4Address]:
    """IPv4 addresses carried inside an IPv6 address (mapped, 6to4, NAT64); [] for none."""
    if isinstance(address, IPv4Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address in _NAT64:
        found.append(IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def non_public_kind(address: IPAddress) -> str | None:
    """Why an address is not public ("loopback", "private", ...), or None for a public address."""
    # An IPv6 address that carries an IPv4 one is judged by the IPv4 address alone: Python files the
    # carriers (::ffff:0:0/96, 64:ff9b::/96) under the reserved ::/8 block whatever they carry.
    for candidate in embedded_ipv4(address) or [address]:
        for kind in ("loopback", "link_local", "multicast", "unspecified", "site_local", "reserved"):
            if getattr(candidate, f"is_{kind}", False):
                return kind.replace("_", "-")
        if candidate.is_private:
            return "private"
        if not candidate.is_global:
            return "non-global"  # e.g. 100.64.0.0/10, shared address space (CGNAT)
    return None


def normalize_host(host: str) -> str:
    """Lower case, no IPv6 brackets, no trailing dot: the form allow-list entries are compared in."""
    return host.strip().strip("[]").rstrip(".").lower()


def resolve(host: str) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself), in resolver order."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL and the addresses it may be delivered to."""

    url: httpx.URL
    host: str
    addresses: tuple[IPAddress, ...]

    def pinned(self, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """(URL with the host replaced by ``address``, the original Host header, httpx extensions).

        The TLS server name stays the original host (httpx's ``sni_hostname``), so certificates are
        still verified against the name the user registered."""
        extensions = {"sni_hostname": self.host} if self.url.scheme == "https" else {}
        return self.url.copy_with(host=str(address)), {"Host": self.url.netloc.decode("ascii")}, extensions


class WebhookUrlPolicy:
    """Checks webhook URLs against the scheme rule, the allow-list and the public-address rule."""

    def __init__(
        self, allow_hosts: Iterable[str], *, what: str = "webhooks", allow_setting: str = ALLOW_SETTING
    ) -> None:
        self.allow_hosts = frozenset(normalize_host(h) for h in allow_hosts)
        # The same rules guard other URLs the service calls on a tenant's word (a query's STAC API).
        self.what = what
        self.allow_setting = allow_setting

    def check(self, url: str) -> WebhookTarget:
        """The target of an acceptable URL; WebhookUrlRefusedError naming the reason otherwise."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise WebhookUrlRefusedError(f"{url!r} is not a URL: {exc}") from None
        if parsed.scheme not in SCHEMES:
            raise WebhookUrlRefusedError(f"scheme {parsed.scheme!r} is not allowed; use http or https")
        host = normalize_host(parsed.raw_host.decode("ascii"))
        if not host:
            raise WebhookUrlRefusedError(f"{url!r} has no host")
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError) as exc:
            raise WebhookUrlRefusedError(f"host {host} does not resolve ({exc})", transient=True) from None
        if host not in self.allow_hosts:
            for address in addresses:
                kind = non_public_kind(address)
                if kind is not None:
                    shown = host if host == str(address) else f"{host} resolves to {address}, which"
                    article = "an" if kind[0] in "aeiou" else "a"
                    raise WebhookUrlRefusedError(
                        f"{shown} is {article} {kind} address; {self.what} may only reach public addresses "
                        f"unless the host is listed in {self.allow_setting}"
                    )
        return WebhookTarget(parsed, host, tuple(addresses))
