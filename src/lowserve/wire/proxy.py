"""Proxy headers: who the client really is, when a trusted proxy says so.

Only a peer listed in ``forwarded_allow_ips`` (an address, a network, or ``*``) is
believed. From its request, the last hop of ``Forwarded`` (RFC 7239) is used when
present, otherwise ``X-Forwarded-For`` (its last address: the one our proxy saw),
``X-Forwarded-Proto`` and ``X-Forwarded-Host``.

The client is believed only when it is well formed: an IP address (a port after it
is dropped; no IPv6 zone), or, in ``Forwarded``'s ``for=``, RFC 7239's ``unknown``
or an obfuscated identifier (``_`` and letters, digits, ``.``, ``_``, ``-``), which
are kept as they are. Anything else is no client: the remote stays the peer's
address, so a value a proxy passed on unchecked never reaches ``request.remote``
or the access log.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from .headers import TCHAR

__all__ = ["ProxyInfo", "TrustedPeers", "parse_forwarded", "read_proxy_headers"]

ProxyInfo = tuple[str | None, str | None, str | None]  # remote, scheme, host


class TrustedPeers:
    """The peers whose proxy headers are believed, parsed once.

    Entries are addresses, networks (``10.0.0.0/8``), ``unix`` (peers on a UNIX
    socket, which have no address) and ``*`` (anyone). Anything else is a ValueError
    naming the entry.
    """

    __slots__ = ("_any", "_names", "_networks", "_unix")

    def __init__(self, entries: Iterable[str]) -> None:
        self._any = self._unix = False
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self._any = True
            elif entry == "unix":
                self._unix = True
            else:
                try:
                    self._networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {entry!r} is not an address, a network, "
                        "'unix' or '*'"
                    ) from None

    def __contains__(self, peer: object) -> bool:
        if self._any:
            return True
        if not peer:
            return self._unix
        try:
            addr = ipaddress.ip_address(str(peer))
        except ValueError:
            return False
        return any(addr in net for net in self._networks)


_NAME = re.compile(rf"([{TCHAR}]+)=")
_TOKEN_VALUE = re.compile(rf"[{TCHAR}:\[\]]+")  # a token, or an address: [::1]:80
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class _Field:
    """One ``Forwarded`` field value, scanned once, left to right.

    A quote that is never closed is a literal character, so the separators after it
    still separate: ``for=a;by=", for=b`` is two elements, the second ``for=b`` (a
    proxy that appends its element to a broken value must not lose it). Once one
    quote is found unclosed, every later quote is too (the escapes after it read the
    same from either start), so none is searched for again: linear in the length.
    """

    __slots__ = ("broken", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.broken = len(text)  # quotes at or after this index are never closed

    def quoted_end(self, i: int) -> int | None:
        """The end of the quoted string opening at *i*, or None if it never closes."""
        if i >= self.broken:
            return None
        m = _QUOTED.match(self.text, i)
        if m is None:
            self.broken = i
            return None
        return m.end()

    def pair(self, pos: int) -> tuple[str, str, int] | None:
        """The ``name=value`` at *pos* (value unquoted) and where it ends, if it is
        well formed and followed by a separator or the end."""
        text = self.text
        m = _NAME.match(text, pos)
        if m is None:
            return None
        start = m.end()
        if text.startswith('"', start):
            end = self.quoted_end(start)
            if end is None:
                return None
            value = _ESCAPE.sub(r"\1", text[start + 1 : end - 1])
        else:
            t = _TOKEN_VALUE.match(text, start)
            if t is None:
                return None
            end, value = t.end(), t.group()
        after = _skip_blanks(text, end)
        if after < len(text) and text[after] not in ",;":
            return None
        return m.group(1).lower(), value, after

    def skip(self, pos: int) -> int:
        """Where the malformed pair at *pos* ends: the next ``,`` or ``;`` outside a
        quoted string."""
        text, i = self.text, pos
        while i < len(text):
            ch = text[i]
            if ch in ",;":
                return i
            if ch == '"':
                end = self.quoted_end(i)
                i = i + 1 if end is None else end
            else:
                i += 1
        return i


def _skip_blanks(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def parse_forwarded(fields: Iterable[str]) -> list[dict[str, str]]:
    """``Forwarded`` field values (RFC 7239 §4) as one dict per hop, oldest first.

    Commas and semicolons inside quoted strings do not split; quoted values are
    unquoted; malformed pairs are skipped (up to the next ``;`` or ``,``); a quote
    never closed is a plain character; a repeated parameter keeps its first value.
    """
    hops: list[dict[str, str]] = []
    for text in fields:
        field = _Field(text)
        pairs: dict[str, str] = {}
        pos = _skip_blanks(text, 0)
        while pos < len(text):
            ch = text[pos]
            if ch == "," or ch == ";":
                if ch == ",":
                    hops.append(pairs)
                    pairs = {}
                pos = _skip_blanks(text, pos + 1)
                continue
            found = field.pair(pos)
            if found is None:
                pos = field.skip(pos)
                continue
            name, value, pos = found
            pairs.setdefault(name, value)
        hops.append(pairs)
    return hops


_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")


def _ip(text: str) -> str | None:
    """*text* if it is an IP address without a zone, else None."""
    if "%" in text:
        return None
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    return text


def _client(value: str, *, rfc7239: bool) -> str | None:
    """A forwarded client (``for=``, an ``X-Forwarded-For`` entry) as request.remote.

    ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:80`` give the address. With *rfc7239* (RFC 7239 §6), ``unknown``
    and an obfuscated ``_name``, each with or without a port (or an obfuscated
    ``_port``), give themselves. Anything else gives None.
    """
    if value.startswith("["):
        inside, closed, rest = value[1:].partition("]")
        if rest and not (rest[0] == ":" and _port(rest[1:], rfc7239)):
            return None
        return _ip(inside) if closed and ":" in inside else None
    name, colon, port = value.partition(":") if value.count(":") == 1 else (value, "", "")
    if colon and not _port(port, rfc7239):
        return None
    if rfc7239 and name.lower() == "unknown":
        return "unknown"
    if rfc7239 and _OBFUSCATED.fullmatch(name):
        return name
    return _ip(name)


def _port(text: str, rfc7239: bool) -> bool:
    """Whether *text* is a port number (or, with *rfc7239*, an obfuscated port)."""
    if text.isascii() and text.isdigit():
        return len(text) <= 5 and int(text) <= 65535
    return rfc7239 and _OBFUSCATED.fullmatch(text) is not None


def read_proxy_headers(headers: Iterable[tuple[bytes, bytes]]) -> ProxyInfo:
    """Remote address, scheme and host the proxy reports (None where it says nothing)."""
    forwarded = xff = proto = host = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"forwarded":
            forwarded = value.decode("latin-1")  # the last field holds the last hop
        elif lname == b"x-forwarded-for":
            xff = value.decode("latin-1") if xff is None else f"{xff},{value.decode('latin-1')}"
        elif lname == b"x-forwarded-proto":
            proto = value.decode("latin-1")
        elif lname == b"x-forwarded-host":
            host = value.decode("latin-1")
    if forwarded is not None:
        hops = parse_forwarded([forwarded])
        pairs = hops[-1] if hops else {}
        remote = _client(pairs["for"], rfc7239=True) if "for" in pairs else None
        scheme = pairs.get("proto", "").lower() or None
        return remote, scheme if scheme in ("http", "https") else None, pairs.get("host")
    remote = _client(xff.split(",")[-1].strip(), rfc7239=False) if xff else None
    scheme = proto.split(",")[-1].strip().lower() if proto else None
    host = host.split(",")[-1].strip() if host else None
    return remote, scheme if scheme in ("http", "https") else None, host or None
