"""Static files with FileResponse: ``lowserve examples.files:handler``.

Serves the files under ROOT (this folder by default): types, ETag/Last-Modified,
conditional requests, ranges, and .gz/.br siblings, as aiohttp's FileResponse does.
A folder serves its ``index.html``. ``root=ROOT`` keeps every file actually opened
(through any symbolic link, a sibling included) inside ROOT: anything else is 404.
"""

import os
from pathlib import Path

from lowserve import web

ROOT = Path(os.environ.get("FILES_ROOT", Path(__file__).parent)).resolve()


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    path = ROOT / request.path.lstrip("/")
    if os.path.isdir(path):  # False, never an error, for a name the system refuses
        path = path / "index.html"
    return web.FileResponse(path, root=ROOT)
