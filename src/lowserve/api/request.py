"""``BaseRequest``: what a handler receives.

The connection hands over the raw request line and header list; everything a
handler may ask for (``url``, ``headers``, ``query``, ``cookies``…) is computed on
first access and kept. Nothing lazy changes what a handler observes: each
property answers as aiohttp's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy
from yarl import URL

from ..wire.cookies import parse_cookie_header
from ..wire.head import HttpVersion
from ..wire.headers import ETag, parse_content_type, parse_etags, parse_http_date
from ..wire.proxy import parse_forwarded
from .exceptions import HTTPRequestEntityTooLarge
from .forms import FileField, parse_form
from .mapping import RequestKey, StateMapping
from .multipart import MultipartReader
from .streams import EMPTY_STREAM, BodyStream

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["BaseRequest", "FileField", "make_request"]  # FileField lives in forms
_T = TypeVar("_T")

_UNSET: Any = object()
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII | re.IGNORECASE)  # as aiohttp: Bytes=, 0-9


class BaseRequest(StateMapping[RequestKey[Any]]):
    """An HTTP request as a handler sees it; also a dict for per-request state."""

    _key_class = RequestKey
    _seen_str_keys: ClassVar[set[object]] = set()

    __slots__ = (
        "_body",
        "_client_max_fields",
        "_client_max_size",
        "_cookies",
        "_headers",
        "_host",
        "_keep_alive",
        "_method",
        "_post",
        "_protocol",
        "_raw_headers",
        "_rel_url",
        "_remote",
        "_scheme",
        "_state",
        "_target",
        "_url",
        "_version",
        "content",
    )

    def __init__(
        self,
        protocol: Connection,
        method: str,
        target: str,
        version: HttpVersion,
        raw_headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        content: BodyStream,
        client_max_size: int = 1024**2,
        *,
        state: dict[str | RequestKey[Any], Any] | None = None,
        scheme: str | None = None,
        host: str | None = None,
        remote: str | None = None,
        client_max_fields: int | None = None,
    ) -> None:
        self._protocol = protocol
        self._method = method
        self._target = target
        self._version = version
        self._raw_headers = raw_headers
        self._keep_alive = keep_alive
        self.content = content
        self._client_max_size = client_max_size
        self._client_max_fields = client_max_fields
        self._state = state
        self._scheme = scheme
        self._host = host
        self._remote = remote
        self._headers: CIMultiDictProxy[str] | None = None
        self._rel_url: URL | None = None
        self._url: URL | None = None
        self._cookies: Mapping[str, str] | None = None
        self._body: bytes | None = None
        self._post: MultiDictProxy[Any] | None = None

    def clone(
        self,
        *,
        method: str = _UNSET,
        rel_url: str | URL = _UNSET,
        headers: Any = _UNSET,
        scheme: str = _UNSET,
        host: str = _UNSET,
        remote: str = _UNSET,
        client_max_size: int = _UNSET,
        client_max_fields: int = _UNSET,
    ) -> BaseRequest:
        """A copy with some attributes replaced; the body stream is shared, the state
        dict copied. Refused once :meth:`read` has taken body bytes, as in aiohttp."""
        if self._body:
            raise RuntimeError("Cannot clone request after reading its content")
        raw_headers = self._raw_headers
        if headers is not _UNSET:
            pairs = CIMultiDict(headers)
            raw_headers = [(k.encode("utf-8"), v.encode("utf-8")) for k, v in pairs.items()]
        target = self._target
        if rel_url is not _UNSET:
            target = str(URL(rel_url) if isinstance(rel_url, str) else rel_url)
        new: BaseRequest = self.__class__(
            self._protocol,
            self._method if method is _UNSET else method,
            target,
            self._version,
            raw_headers,
            self._keep_alive,
            self.content,
            client_max_size=(
                self._client_max_size if client_max_size is _UNSET else client_max_size
            ),
            state=None if self._state is None else self._state.copy(),
            scheme=self._scheme if scheme is _UNSET else scheme,
            host=self._host if host is _UNSET else host,
            remote=self._remote if remote is _UNSET else remote,
            client_max_fields=(
                self._client_max_fields if client_max_fields is _UNSET else client_max_fields
            ),
        )
        if rel_url is not _UNSET:
            url = URL(rel_url) if isinstance(rel_url, str) else rel_url
            new._rel_url = url.relative() if url.is_absolute() else url
        new._body = self._body
        return new

    if TYPE_CHECKING:  # as aiohttp: a typed key gives its type (StateMapping runs these)

        @overload
        def __getitem__(self, key: RequestKey[_T]) -> _T: ...
        @overload
        def __getitem__(self, key: str) -> Any: ...
        def __getitem__(self, key: str | RequestKey[Any]) -> Any: ...
        @overload
        def __setitem__(self, key: RequestKey[_T], value: _T) -> None: ...
        @overload
        def __setitem__(self, key: str, value: Any) -> None: ...
        def __setitem__(self, key: str | RequestKey[Any], value: Any) -> None: ...

    # -- the request line -----------------------------------------------------
    @property
    def method(self) -> str:
        return self._method

    @property
    def version(self) -> HttpVersion:
        return self._version

    @property
    def raw_path(self) -> str:
        """The request target as sent, undecoded: ``/a%20b?x=1``."""
        return self._target

    @property
    def rel_url(self) -> URL:
        url = self._rel_url
        if url is None:
            url = self._rel_url = _target_url(self._target)
        return url

    @property
    def url(self) -> URL:
        """The absolute URL: scheme and host joined with ``rel_url``.

        An absolute-form target (``GET http://example.com/x``, RFC 9112 §3.2.2) is the
        URL itself, Host header ignored, with the connection's scheme: the target's own
        scheme is the client's claim, so ``https://`` over plain TCP stays ``http``
        (as in aiohttp).
        """
        url = self._url
        if url is None:
            absolute = _absolute_target(self._target) if self._host is None else None
            if absolute is not None:
                url = absolute.with_scheme(self.scheme)
            else:
                try:
                    base = URL.build(scheme=self.scheme, authority=self.host)
                except ValueError:
                    base = URL.build(scheme=self.scheme, host="localhost")
                url = base.join(self.rel_url)
            self._url = url
        return url

    @property
    def path(self) -> str:
        """The decoded path; a target with nothing to decode is returned as is."""
        target = self._target
        # Three substring tests, not a regular expression: ~1,100 instructions less
        # per read (callgrind, CPython 3.11), and every router reads it.
        if (
            self._rel_url is None
            and target[:1] == "/"
            and "%" not in target
            and "?" not in target
            and "#" not in target
        ):
            return target
        return self.rel_url.path

    @property
    def path_qs(self) -> str:
        return str(self.rel_url)

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.rel_url.query

    @property
    def query_string(self) -> str:
        return self.rel_url.query_string

    # -- headers --------------------------------------------------------------
    @property
    def headers(self) -> CIMultiDictProxy[str]:
        h = self._headers
        if h is None:
            h = self._headers = CIMultiDictProxy(
                CIMultiDict(
                    (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                    for k, v in self._raw_headers
                )
            )
        return h

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._raw_headers)

    @property
    def keep_alive(self) -> bool:
        """Whether the client asked to keep the connection open after this request."""
        return self._keep_alive

    @property
    def host(self) -> str:
        """The ``Host`` header, or the local address the request arrived on.

        For an absolute-form target, the target's host (without its port, as aiohttp).
        """
        if self._host is not None:
            return self._host
        absolute = _absolute_target(self._target)
        if absolute is not None:
            return absolute.host or ""
        host = self.headers.get("Host")
        if host is None:
            host = host_of_sockname(self.get_extra_info("sockname"))
        self._host = host
        return host

    @property
    def remote(self) -> str | None:
        """The peer's address (the socket path's peer name for UNIX sockets)."""
        if self._remote is not None:
            return self._remote
        return self._protocol.peer

    @property
    def scheme(self) -> str:
        if self._scheme is not None:
            return self._scheme
        return "https" if self._protocol.is_tls else "http"

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def forwarded(self) -> tuple[Mapping[str, str], ...]:
        """The ``Forwarded`` headers (RFC 7239), one mapping per forwarding hop."""
        return tuple(
            MappingProxyType(element)
            for element in parse_forwarded(self.headers.getall("Forwarded", ()))
        )

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._protocol.transport

    @property
    def protocol(self) -> Connection:
        return self._protocol

    @property
    def task(self) -> asyncio.Task[Any] | None:
        """The task running this request's handler: its connection's (as in aiohttp,
        one task answers a connection's requests in turn)."""
        return self._protocol.task

    def set_forwarded(self, remote: str | None, scheme: str | None, host: str | None) -> None:
        """Internal: the connection sets what trusted proxy headers say (None: unsaid)."""
        self._remote, self._scheme, self._host = remote, scheme, host

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The connection's event loop (deprecated in aiohttp, and so here)."""
        warnings.warn("request.loop property is deprecated", DeprecationWarning, stacklevel=2)
        return self._protocol.loop

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's extra info (``peername``, ``sslcontext``…)."""
        transport = self._protocol.transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)

    @property
    def cookies(self) -> Mapping[str, str]:
        """The ``Cookie`` header's name/value pairs (read as :mod:`~lowserve.wire.cookies`
        says); a name sent twice has its last value."""
        c = self._cookies
        if c is None:
            parsed: dict[str, str] = {}
            for raw in self.headers.getall("Cookie", ()):
                parsed.update(parse_cookie_header(raw))
            c = self._cookies = MappingProxyType(parsed)
        return c

    @property
    def content_type(self) -> str:
        return parse_content_type(self.headers.get("Content-Type"))[0]

    @property
    def charset(self) -> str | None:
        return parse_content_type(self.headers.get("Content-Type"))[1].get("charset")

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    @property
    def if_modified_since(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Modified-Since"))

    @property
    def if_unmodified_since(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Unmodified-Since"))

    @property
    def if_range(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("If-Range"))

    @property
    def if_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self.headers.get("If-Match"))

    @property
    def if_none_match(self) -> tuple[ETag, ...] | None:
        return parse_etags(self.headers.get("If-None-Match"))

    @property
    def http_range(self) -> slice:
        """The ``Range`` header as a slice; ``ValueError`` if it is malformed."""
        rng = self.headers.get("Range")
        start: int | None = None
        end: int | None = None
        if rng is not None:
            m = _RANGE.match(rng)
            if m is None:
                raise ValueError("range not in acceptable format")
            s, e = m.group(1), m.group(2)
            start = int(s) if s else None
            end = int(e) if e else None
            if start is None and end is not None:
                start, end = -end, None
            elif start is not None and end is not None:
                end += 1
                if start >= end:
                    raise ValueError("start cannot be after end")
            if start is end is None:
                raise ValueError("No start or end of range specified")
        return slice(start, end, 1)

    # -- the body -------------------------------------------------------------
    @property
    def body_exists(self) -> bool:
        """Whether the request has a body (a length or chunked framing)."""
        return self.content is not EMPTY_STREAM

    @property
    def can_read_body(self) -> bool:
        """Whether body bytes remain to be read."""
        return not self.content.at_eof()

    @property
    def has_body(self) -> bool:
        warnings.warn("Deprecated, use .can_read_body", DeprecationWarning, stacklevel=2)
        return self.can_read_body

    @property
    def client_max_size(self) -> int:
        return self._client_max_size

    @property
    def client_max_fields(self) -> int:
        """The most fields :meth:`post` accepts (0 or less: no limit); the server's
        option unless given to the constructor or :meth:`clone`."""
        fields = self._client_max_fields
        return self._protocol.client_max_fields if fields is None else fields

    async def read(self) -> bytes:
        """The whole body; ``HTTPRequestEntityTooLarge`` past ``client_max_size``."""
        if self._body is None:
            limit = self._client_max_size
            content = self.content
            declared = content.declared
            if limit and declared is not None and declared > limit:
                raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
            whole = content.take_whole(limit)
            if whole is not None:  # everything has arrived (the common case for small bodies)
                self._body = whole
                return whole
            body = bytearray()
            while True:
                chunk = await self.content.readany()
                if not chunk:
                    break
                body += chunk
                if limit and len(body) > limit:
                    raise HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
            self._body = bytes(body)
        return self._body

    async def text(self) -> str:
        """The body decoded with its charset (UTF-8 by default)."""
        body = await self.read()
        return body.decode(self.charset or "utf-8")

    async def json(self, *, loads: Any = json.loads, content_type: str | None = None) -> Any:
        """The body parsed as JSON."""
        return loads(await self.text())

    async def post(self) -> MultiDictProxy[Any]:
        """Form fields of an urlencoded or multipart body (files as :class:`FileField`)."""
        if self._post is None:
            if self._method not in ("POST", "PUT", "PATCH", "TRACE", "DELETE"):
                self._post = MultiDictProxy(MultiDict())
            else:
                self._post = await parse_form(self)
        return self._post

    def finish(self) -> None:
        """Internal: the connection calls this once the request's handling has ended
        (answered, failed or cancelled). The files :meth:`post` spooled are closed then,
        as aiohttp closes them, rather than holding a descriptor until collected."""
        if self._post is not None:
            for value in self._post.values():
                if isinstance(value, FileField):
                    with contextlib.suppress(OSError):  # a temporary file: nothing to keep
                        value.file.close()

    async def multipart(self) -> MultipartReader:
        """The body's parts, streamed (aiohttp's ``MultipartReader``); see
        :mod:`lowserve.api.multipart` for the bounds that apply."""
        return MultipartReader(
            self.headers,
            self.content,
            max_size=self._client_max_size,
            max_parts=self.client_max_fields,
        )

    async def release(self) -> None:
        """Read and discard the rest of the body."""
        while await self.content.readany():
            pass

    def __repr__(self) -> str:
        """As aiohttp's: the decoded path, non-ASCII characters backslash-escaped."""
        path = self.path.encode("ascii", "backslashreplace").decode("ascii")
        return f"<{self.__class__.__name__} {self._method} {path} >"


_new_object = object.__new__


def make_request(
    protocol: Connection,
    method: str,
    target: str,
    version: HttpVersion,
    raw_headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
    content: BodyStream,
    client_max_size: int,
) -> BaseRequest:
    """``BaseRequest(protocol, method, …, client_max_size)``, made without the class
    call: what the connection makes of each head when the server's ``request_factory``
    is ``BaseRequest`` itself. Calling a class with arguments builds an argument tuple
    and runs ``__init__`` through its slot (~4,300 instructions, callgrind, CPython
    3.11); this costs ~3,200. It sets every field ``__init__`` sets (tests/api checks)."""
    self: BaseRequest = _new_object(BaseRequest)
    self._protocol = protocol
    self._method = method
    self._target = target
    self._version = version
    self._raw_headers = raw_headers
    self._keep_alive = keep_alive
    self.content = content
    self._client_max_size = client_max_size
    self._client_max_fields = None
    self._state = None
    self._scheme = None
    self._host = None
    self._remote = None
    self._headers = None
    self._rel_url = None
    self._url = None
    self._cookies = None
    self._body = None
    self._post = None
    return self


def host_of_sockname(sockname: Any) -> str:
    """``request.host`` without a Host header: the local address the request came to."""
    if isinstance(sockname, tuple):
        return f"[{sockname[0]}]" if len(sockname) == 4 else str(sockname[0])
    return str(sockname) if sockname else ""


def _absolute_target(target: str) -> URL | None:
    """The URL of an absolute-form target (``http://host/path``), else None."""
    if target[:1] == "/" or "://" not in target:
        return None
    try:
        url = URL(target, encoded=True)
    except ValueError:
        return None
    return url if url.is_absolute() else None


def _target_url(target: str) -> URL:
    """The relative URL of a request target (origin, absolute, authority or asterisk form)."""
    if target.startswith("/"):
        rest, _, fragment = target.partition("#")
        path, _, query = rest.partition("?")
        return URL.build(path=path, query_string=query, fragment=fragment, encoded=True)
    if "://" in target:
        return URL(target, encoded=True).relative()
    return URL.build(path=target, encoded=True)
