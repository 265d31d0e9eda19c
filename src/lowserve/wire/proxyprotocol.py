"""The PROXY protocol (HAProxy's ``doc/proxy-protocol.txt``), versions 1 and 2.

A load balancer that forwards TCP (HAProxy's ``send-proxy``/``send-proxy-v2``, cloud
TCP balancers) writes one header before the client's bytes, saying who the client is:

* v1: one text line of at most 107 bytes,
  ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` or ``PROXY UNKNOWN ...\\r\\n``;
* v2: the 12-byte signature, a version/command byte (``0x21`` PROXY, ``0x20`` LOCAL),
  a family/transport byte, a 2-byte length, the addresses, then optional TLVs.

:func:`parse` reads one header from the start of a buffer. LOCAL (a health check) and
UNKNOWN carry no client: the real peer stands.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

__all__ = ["MAX_HEADER", "ProxyHeader", "parse"]

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: The most bytes a header may take (v2's TLVs included); past it, it is malformed.
MAX_HEADER = 4096
_V1_MAX = 107


class ProxyHeader(NamedTuple):
    """What a PROXY header said: its length, and the client (None: keep the peer)."""

    length: int
    client: tuple[str, int] | None


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of *data*; None when more bytes are needed.

    ValueError when it is not a PROXY header, or a malformed one.
    """
    if data[:1] == b"P":
        return _v1(data)
    if data[:1] == b"\r":
        return _v2(data)
    raise ValueError("no PROXY protocol header")


def _v1(data: bytes) -> ProxyHeader | None:
    if not b"PROXY "[: len(data)] == data[:6]:
        raise ValueError("no PROXY protocol header")
    end = data.find(b"\r\n", 0, _V1_MAX)
    if end < 0:
        if len(data) >= _V1_MAX:
            raise ValueError("PROXY v1 line too long")
        return None
    words = data[:end].decode("ascii", "replace").split(" ")
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return ProxyHeader(end + 2, None)
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ValueError(f"malformed PROXY v1 line {data[:end]!r}")
    _, family, src, _dst, sport, _dport = words
    try:
        addr = ipaddress.ip_address(src)
        port = int(sport)
    except ValueError:
        raise ValueError(f"malformed PROXY v1 line {data[:end]!r}") from None
    if (addr.version == 4) != (family == "TCP4") or not 0 <= port <= 65535:
        raise ValueError(f"malformed PROXY v1 line {data[:end]!r}")
    return ProxyHeader(end + 2, (str(addr), port))


def _v2(data: bytes) -> ProxyHeader | None:
    if len(data) < 16:
        if not SIGNATURE.startswith(data[:12]):
            raise ValueError("no PROXY protocol header")
        return None
    if data[:12] != SIGNATURE:
        raise ValueError("no PROXY protocol header")
    ver_cmd, fam, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if ver_cmd >> 4 != 2 or ver_cmd & 0xF not in (0, 1):
        raise ValueError(f"unsupported PROXY v2 version/command {ver_cmd:#x}")
    if 16 + length > MAX_HEADER:
        raise ValueError("PROXY v2 header too long")
    if len(data) < 16 + length:
        return None
    total = 16 + length
    if ver_cmd & 0xF == 0:  # LOCAL: the balancer itself (a health check)
        return ProxyHeader(total, None)
    body = data[16:total]
    if fam in (0x11, 0x12):  # TCP or UDP over IPv4
        if length < 12:
            raise ValueError("PROXY v2 IPv4 addresses cut short")
        src = str(ipaddress.IPv4Address(body[0:4]))
        return ProxyHeader(total, (src, struct.unpack("!H", body[8:10])[0]))
    if fam in (0x21, 0x22):  # over IPv6
        if length < 36:
            raise ValueError("PROXY v2 IPv6 addresses cut short")
        src = str(ipaddress.IPv6Address(body[0:16]))
        return ProxyHeader(total, (src, struct.unpack("!H", body[32:34])[0]))
    # UNSPEC or UNIX: no client address to report
    return ProxyHeader(total, None)
