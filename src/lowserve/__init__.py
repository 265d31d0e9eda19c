"""lowserve: a fast, strict HTTP/1.1 + WebSocket server with aiohttp's low-level server API.

``from lowserve import web`` gives the ``aiohttp.web``-shaped namespace; every
name in it is also importable from ``lowserve`` itself, and so is ``ETag`` (as
``from aiohttp import ETag``).
"""

from . import web
from ._version import __version__
from .web import *  # noqa: F403
from .web import __all__ as _web_all
from .wire.headers import ETag

__all__ = ["ETag", "__version__", "web", *_web_all]
