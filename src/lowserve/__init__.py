"""lowserve: a fast, strict HTTP/1.1 + WebSocket server with aiohttp's low-level server API.

``from lowserve import web`` gives the ``aiohttp.web``-shaped namespace; every
name in it is also importable from ``lowserve`` itself, and so is ``ETag`` (as
``from aiohttp import ETag``).
"""

from . import _build

# Before any compiled module is imported: LOWSERVE_PURE=1, or a stale compiled copy,
# runs its .py instead (see lowserve/_build.py).
_build.install()

from . import web  # noqa: E402
from ._version import __version__  # noqa: E402
from .web import *  # noqa: E402, F403
from .web import __all__ as _web_all  # noqa: E402
from .wire.headers import ETag  # noqa: E402

__all__ = ["ETag", "__version__", "web", *_web_all]
