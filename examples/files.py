"""Static files with FileResponse: ``lowserve examples.files:handler``.

Serves the files under ROOT (this folder by default): types, ETag/Last-Modified,
conditional requests, ranges, and .gz/.br siblings, as aiohttp's FileResponse does.
"""

import os
from pathlib import Path

from lowserve import web

ROOT = Path(os.environ.get("FILES_ROOT", Path(__file__).parent)).resolve()


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    path = (ROOT / request.path.lstrip("/")).resolve()
    if ROOT not in path.parents and path != ROOT:
        raise web.HTTPForbidden()  # no way out of ROOT ("../")
    if path.is_dir():
        path = path / "index.html"
    return web.FileResponse(path)
