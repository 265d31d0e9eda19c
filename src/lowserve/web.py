"""The ``aiohttp.web``-shaped namespace: ``from lowserve import web``."""

from .api.accesslog import AbstractAccessLogger, AccessLogger
from .api.exceptions import *  # noqa: F403
from .api.exceptions import __all__ as _exc_all
from .api.fileresponse import FileResponse
from .api.mapping import NotAppKeyWarning, RequestKey, ResponseKey
from .api.multipart import BodyPartReader, MultipartReader
from .api.request import BaseRequest, FileField
from .api.response import Response, StreamResponse, json_bytes_response, json_response
from .conn.server import Server
from .options import ServerOptions
from .runner import BaseSite, GracefulExit, ServerRunner, SockSite, TCPSite, UnixSite
from .serve import run, serve
from .wire.codings import ContentCoding
from .wire.head import HttpVersion, HttpVersion10, HttpVersion11
from .ws.response import WebSocketReady, WebSocketResponse, WSCloseCode, WSMessage, WSMsgType

__all__ = [
    "AbstractAccessLogger",
    "AccessLogger",
    "BaseRequest",
    "BaseSite",
    "BodyPartReader",
    "ContentCoding",
    "FileField",
    "FileResponse",
    "GracefulExit",
    "HttpVersion",
    "HttpVersion10",
    "HttpVersion11",
    "MultipartReader",
    "NotAppKeyWarning",
    "RequestKey",
    "Response",
    "ResponseKey",
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
    "json_bytes_response",
    "json_response",
    "run",
    "serve",
]
__all__ += _exc_all
