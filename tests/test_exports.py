"""The public names are pinned: a change to them is a deliberate change to this list."""

import lowserve
from lowserve import web

EXCEPTIONS = {
    "HTTPAccepted",
    "HTTPBadGateway",
    "HTTPBadRequest",
    "HTTPClientError",
    "HTTPConflict",
    "HTTPCreated",
    "HTTPError",
    "HTTPException",
    "HTTPExpectationFailed",
    "HTTPFailedDependency",
    "HTTPForbidden",
    "HTTPFound",
    "HTTPGatewayTimeout",
    "HTTPGone",
    "HTTPInsufficientStorage",
    "HTTPInternalServerError",
    "HTTPLengthRequired",
    "HTTPMethodNotAllowed",
    "HTTPMisdirectedRequest",
    "HTTPMove",
    "HTTPMovedPermanently",
    "HTTPMultipleChoices",
    "HTTPNetworkAuthenticationRequired",
    "HTTPNoContent",
    "HTTPNonAuthoritativeInformation",
    "HTTPNotAcceptable",
    "HTTPNotExtended",
    "HTTPNotFound",
    "HTTPNotImplemented",
    "HTTPNotModified",
    "HTTPOk",
    "HTTPPartialContent",
    "HTTPPaymentRequired",
    "HTTPPermanentRedirect",
    "HTTPPreconditionFailed",
    "HTTPPreconditionRequired",
    "HTTPProxyAuthenticationRequired",
    "HTTPRedirection",
    "HTTPRequestEntityTooLarge",
    "HTTPRequestHeaderFieldsTooLarge",
    "HTTPRequestRangeNotSatisfiable",
    "HTTPRequestTimeout",
    "HTTPRequestURITooLong",
    "HTTPResetContent",
    "HTTPSeeOther",
    "HTTPServerError",
    "HTTPServiceUnavailable",
    "HTTPSuccessful",
    "HTTPTemporaryRedirect",
    "HTTPTooManyRequests",
    "HTTPUnauthorized",
    "HTTPUnavailableForLegalReasons",
    "HTTPUnprocessableEntity",
    "HTTPUnsupportedMediaType",
    "HTTPUpgradeRequired",
    "HTTPUseProxy",
    "HTTPVariantAlsoNegotiates",
    "HTTPVersionNotSupported",
}
CORE = {
    "AbstractAccessLogger",
    "AccessLogger",
    "BaseRequest",
    "BaseSite",
    "ContentCoding",
    "FileField",
    "GracefulExit",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "Response",
    "Server",
    "ServerOptions",
    "ServerRunner",
    "SockSite",
    "StreamResponse",
    "TCPSite",
    "UnixSite",
    "WSCloseCode",
    "WSMessage",
    "WSMsgType",
    "WebSocketReady",
    "WebSocketResponse",
    "FileResponse",
    "BodyPartReader",
    "MultipartReader",
    "json_bytes_response",
    "json_response",
    "NotAppKeyWarning",
    "RequestKey",
    "ResponseKey",
    "run",
    "serve",
}


# aiohttp's RequestPayloadError, and lowserve's name for a client gone mid-request.
BODY_ERRORS = {"ClientDisconnectedError", "RequestPayloadError"}


def test_web_exports() -> None:
    assert set(web.__all__) == CORE | EXCEPTIONS | {
        "ClientDisconnectedError",
        "RequestPayloadError",
    }
    for name in web.__all__:
        assert getattr(web, name) is not None


def test_top_level_mirrors_web() -> None:
    assert set(lowserve.__all__) == CORE | EXCEPTIONS | BODY_ERRORS | {"ETag", "__version__", "web"}
    for name in web.__all__:
        assert getattr(lowserve, name) is getattr(web, name)
    assert lowserve.ETag("x", is_weak=True) == ("x", True)  # aiohttp's ETag: top level only


def test_exceptions_match_aiohttp() -> None:
    from aiohttp import web as aioweb

    theirs = {n for n in dir(aioweb) if n.startswith("HTTP")}
    assert theirs == EXCEPTIONS
    for name in EXCEPTIONS:
        ours_cls = getattr(web, name)
        theirs_cls = getattr(aioweb, name)
        assert ours_cls.status_code == theirs_cls.status_code, name
        assert ours_cls.empty_body == theirs_cls.empty_body, name
        assert [c.__name__ for c in ours_cls.__mro__ if c.__name__.startswith("HTTP")] == [
            c.__name__ for c in theirs_cls.__mro__ if c.__name__.startswith("HTTP")
        ], name
