"""The header-backed properties of a response: cookies, type, charset, dates, ETag.

Every value lives in the response's headers or its cookie jar; these properties read
and write them in aiohttp's formats.
"""

from __future__ import annotations

import datetime
import math
from http.cookies import Morsel, SimpleCookie

from multidict import CIMultiDict

from ..wire.headers import (
    ETag,
    format_etag,
    format_http_date,
    parse_content_type,
    parse_etag,
    parse_http_date,
    validate_etag_value,
)

__all__ = ["HeaderFields"]

_EPOCH = format_http_date(0)  # a deleted cookie's expiry


class HeaderFields:
    """Mixed into :class:`~lowserve.StreamResponse`."""

    # A response made by Response's fast path has only _ctype (its one Content-Type):
    # the multidict is made when first asked for. (Set by the constructors.)
    _ctype: str | None
    _headers: CIMultiDict[str] | None
    _cookies: SimpleCookie | None
    _chunked: bool

    @property
    def headers(self) -> CIMultiDict[str]:
        headers = self._headers
        if headers is None:
            ctype = self._ctype
            headers = self._headers = (
                CIMultiDict() if ctype is None else CIMultiDict((("Content-Type", ctype),))
            )
            self._ctype = None
        return headers

    @property
    def cookies(self) -> SimpleCookie:
        if self._cookies is None:
            self._cookies = SimpleCookie()
        return self._cookies

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        expires: str | None = None,
        domain: str | None = None,
        max_age: int | str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        version: str | None = None,
        samesite: str | None = None,
        partitioned: bool | None = None,
    ) -> None:
        """Set or update a cookie; only the attributes given are changed."""
        cookies = self.cookies
        cookies[name] = value
        c: Morsel[str] = cookies[name]
        if expires is not None:
            c["expires"] = expires
        elif c.get("expires") == _EPOCH:
            del c["expires"]
        if domain is not None:
            c["domain"] = domain
        if max_age is not None:
            c["max-age"] = str(max_age)
        elif "max-age" in c:
            del c["max-age"]
        c["path"] = path
        for key, val in (
            ("secure", secure),
            ("httponly", httponly),
            ("version", version),
            ("samesite", samesite),
            ("partitioned", partitioned),
        ):
            if val is not None:
                c[key] = val

    def del_cookie(
        self,
        name: str,
        *,
        domain: str | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool | None = None,
        samesite: str | None = None,
    ) -> None:
        """Expire a cookie on the client."""
        if self._cookies is not None:
            self._cookies.pop(name, None)
        self.set_cookie(
            name,
            "",
            max_age=0,
            expires=_EPOCH,
            domain=domain,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None else None

    @content_length.setter
    def content_length(self, value: int | None) -> None:
        if value is not None:
            if self._chunked:
                raise RuntimeError("You can't set content length when chunked encoding is enable")
            self.headers["Content-Length"] = str(int(value))
        else:
            self.headers.pop("Content-Length", None)

    @property
    def content_type(self) -> str:
        return parse_content_type(self.headers.get("Content-Type"))[0]

    @content_type.setter
    def content_type(self, value: str) -> None:
        params = parse_content_type(self.headers.get("Content-Type"))[1]
        self._set_content_type(str(value), params)

    @property
    def charset(self) -> str | None:
        return parse_content_type(self.headers.get("Content-Type"))[1].get("charset")

    @charset.setter
    def charset(self, value: str | None) -> None:
        ctype, params = parse_content_type(self.headers.get("Content-Type"))
        if ctype == "application/octet-stream":
            raise RuntimeError(
                "Setting charset for application/octet-stream "
                "doesn't make sense, setup content_type first"
            )
        if value is None:
            params.pop("charset", None)
        else:
            params["charset"] = str(value).lower()
        self._set_content_type(ctype, params)

    def _set_content_type(self, ctype: str, params: dict[str, str]) -> None:
        extra = "; ".join(f"{k}={v}" for k, v in params.items())
        self.headers["Content-Type"] = f"{ctype}; {extra}" if extra else ctype

    @property
    def last_modified(self) -> datetime.datetime | None:
        return parse_http_date(self.headers.get("Last-Modified"))

    @last_modified.setter
    def last_modified(self, value: float | datetime.datetime | str | None) -> None:
        if value is None:
            self.headers.pop("Last-Modified", None)
        elif isinstance(value, int | float):
            self.headers["Last-Modified"] = format_http_date(math.ceil(value))
        elif isinstance(value, datetime.datetime):
            if value.microsecond:
                value = value.replace(microsecond=0) + datetime.timedelta(seconds=1)
            self.headers["Last-Modified"] = format_http_date(value)
        elif isinstance(value, str):
            self.headers["Last-Modified"] = value
        else:
            raise TypeError(f"Unsupported type for last_modified: {type(value).__name__}")

    @property
    def etag(self) -> ETag | None:
        return parse_etag(self.headers.get("Etag"))

    @etag.setter
    def etag(self, value: ETag | str | None) -> None:
        if value is None:
            self.headers.pop("Etag", None)
        elif isinstance(value, ETag) and isinstance(value.value, str):
            validate_etag_value(value.value)
            self.headers["Etag"] = format_etag(value)
        elif isinstance(value, str):
            validate_etag_value(value)
            self.headers["Etag"] = format_etag(ETag(value))
        else:
            raise ValueError(
                f"Unsupported etag type: {type(value)}. etag must be str, ETag or None"
            )
