"""Proxy headers: who the client really is, when a trusted proxy says so.

Only a peer listed in ``forwarded_allow_ips`` (an address, a network, or ``*``) is
believed. From its request, the last hop of ``Forwarded`` (RFC 7239) is used when
present, otherwise ``X-Forwarded-For`` (its last address: the one our proxy saw),
``X-Forwarded-Proto`` and ``X-Forwarded-Host``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["ProxyInfo", "is_trusted", "read_proxy_headers"]

ProxyInfo = tuple[str | None, str | None, str | None]  # remote, scheme, host


def is_trusted(peer: str | None, allowed: Iterable[str]) -> bool:
    """Whether proxy headers from *peer* may be believed."""
    allowed = tuple(allowed)
    if "*" in allowed:
        return True
    if not peer:
        return "unix" in allowed
    try:
        addr = ipaddress.ip_address(peer)
    except ValueError:
        return peer in allowed
    for item in allowed:
        try:
            if addr in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def _node(value: str) -> str:
    """``for=`` node to an address: ``"[2001:db8::1]:80"`` → ``2001:db8::1``."""
    value = _unquote(value)
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


def read_proxy_headers(headers: Iterable[tuple[bytes, bytes]]) -> ProxyInfo:
    """Remote address, scheme and host the proxy reports (None where it says nothing)."""
    forwarded = xff = proto = host = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"forwarded":
            forwarded = value.decode("latin-1")  # the last header holds the last hop
        elif lname == b"x-forwarded-for":
            xff = value.decode("latin-1") if xff is None else f"{xff},{value.decode('latin-1')}"
        elif lname == b"x-forwarded-proto":
            proto = value.decode("latin-1")
        elif lname == b"x-forwarded-host":
            host = value.decode("latin-1")
    if forwarded is not None:
        last = forwarded.split(",")[-1]
        pairs = {}
        for item in last.split(";"):
            key, sep, val = item.partition("=")
            if sep:
                pairs[key.strip().lower()] = _unquote(val)
        remote = _node(pairs["for"]) if "for" in pairs else None
        scheme = pairs.get("proto", "").lower() or None
        return remote, scheme if scheme in ("http", "https") else None, pairs.get("host")
    remote = xff.split(",")[-1].strip() or None if xff else None
    scheme = proto.split(",")[-1].strip().lower() if proto else None
    host = host.split(",")[-1].strip() if host else None
    return remote, scheme if scheme in ("http", "https") else None, host or None
