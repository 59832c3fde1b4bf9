"""Egress allowlist decisions (pure): which names, which resolved addresses, which TLS names.

The proxy resolves a name once, checks every address the resolver returned, and connects to
exactly an address it checked (no second lookup, so DNS rebinding cannot swap it). A listed
domain never reaches private, loopback, link-local, metadata or other non-global ranges unless
that range is itself listed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from stockade.policy import domain_matches

__all__ = [
    "BLOCK_KINDS",
    "EgressPolicy",
    "check_addresses",
    "check_agreement",
    "check_target",
    "parse_sni",
]

#: Why the proxy blocked an attempt, as a bounded set (audited as ``kind``; the metric's label):
#: target not allowlisted (or an IP literal / malformed name), a resolved address refused, target
#: / Host / SNI disagreeing, the upstream connection failing, a protocol the proxy does not speak,
#: malformed HTTP framing, an i/o error.
BLOCK_KINDS = ("not_allowlisted", "address", "mismatch", "connect", "protocol", "malformed", "io")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class EgressPolicy:
    domains: tuple[str, ...]
    #: Non-global ranges the operator listed explicitly (e.g. an internal API's subnet).
    allowed_ranges: tuple[IPNetwork, ...] = ()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_target(host: str, port: int, policy: EgressPolicy) -> str | None:
    """None if ``host:port`` may be asked for; else the reason it is blocked."""
    if not 0 < port < 65536:
        return f"port {port} is out of range"
    if not host or len(host) > 253 or not host.isascii() or not host.isprintable():
        return "target host is empty, too long or not printable ASCII"
    if any(c in host for c in "/\\@ %"):
        return "target host has a character no domain name has"
    if _is_ip(host):
        return f"target {host!r} is an IP literal (only listed domains are reachable)"
    if not any(domain_matches(p, host) for p in policy.domains):
        return f"domain {host!r} is not in the allowlist"
    return None


def _mapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def check_addresses(addresses: list[str], policy: EgressPolicy) -> tuple[str | None, str | None]:
    """(address to connect to, None) if every resolved address is allowed; else (None, why)."""
    if not addresses:
        return None, "the name resolved to no address"
    for raw in addresses:
        try:
            ip = _mapped(ipaddress.ip_address(raw))
        except ValueError:
            return None, f"the resolver returned a non-address {raw!r}"
        listed = any(ip.version == n.version and ip in n for n in policy.allowed_ranges)
        if not ip.is_global and not listed:
            return None, f"resolved address {ip} is in a non-public range that is not listed"
        if ip.is_multicast or ip.is_unspecified:
            return None, f"resolved address {ip} is multicast or unspecified"
    return addresses[0], None


def check_agreement(target: str, host_header: str | None, sni: str | None) -> str | None:
    """CONNECT target, Host header and TLS SNI must name the same host (case-insensitive)."""
    t = target.lower().rstrip(".")
    if host_header is not None:
        h = host_header.lower().rsplit(":", 1)[0] if not host_header.startswith("[") else ""
        if h.rstrip(".") != t:
            return f"Host header {host_header!r} disagrees with the target {target!r}"
    if sni is not None and sni.lower().rstrip(".") != t:
        return f"TLS SNI {sni!r} disagrees with the target {target!r}"
    return None


def parse_sni(data: bytes) -> str | None:
    """The server_name of a TLS ClientHello record, or None if absent or not a ClientHello."""
    try:
        if len(data) < 5 or data[0] != 0x16:
            return None
        rec_len = int.from_bytes(data[3:5], "big")
        hs = data[5 : 5 + rec_len]
        if not hs or hs[0] != 0x01:
            return None
        p = 4 + 2 + 32  # handshake header, client version, random
        p += 1 + hs[p]  # session id
        p += 2 + int.from_bytes(hs[p : p + 2], "big")  # cipher suites
        p += 1 + hs[p]  # compression methods
        end = p + 2 + int.from_bytes(hs[p : p + 2], "big")
        p += 2
        while p + 4 <= min(end, len(hs)):
            etype = int.from_bytes(hs[p : p + 2], "big")
            elen = int.from_bytes(hs[p + 2 : p + 4], "big")
            body = hs[p + 4 : p + 4 + elen]
            if etype == 0:  # server_name
                q = 2
                while q + 3 <= len(body):
                    ntype, nlen = body[q], int.from_bytes(body[q + 1 : q + 3], "big")
                    name = body[q + 3 : q + 3 + nlen]
                    if ntype == 0:
                        return name.decode("ascii")
                    q += 3 + nlen
                return None
            p += 4 + elen
    except (IndexError, UnicodeDecodeError):
        return None
    return None
