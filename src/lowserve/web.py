"""The ``aiohttp.web``-shaped namespace: ``from lowserve import web``."""

from .accesslog import AbstractAccessLogger, AccessLogger
from .exceptions import *  # noqa: F403
from .exceptions import __all__ as _exc_all
from .http import HttpVersion, HttpVersion10, HttpVersion11
from .options import ServerOptions
from .request import BaseRequest, FileField
from .response import Response, StreamResponse, json_response
from .runner import BaseSite, GracefulExit, ServerRunner, SockSite, TCPSite, UnixSite
from .serve import run, serve
from .server import Server
from .websocket import WebSocketReady, WebSocketResponse, WSCloseCode, WSMessage, WSMsgType
from .writer import ContentCoding

__all__ = [
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
    "json_response",
    "run",
    "serve",
]
__all__ += _exc_all
