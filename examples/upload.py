"""A multipart upload streamed to disk under a size bound: ``lowserve examples.upload:handler``.

``POST /`` with ``multipart/form-data``: each file part is written to UPLOAD_DIR (a
temporary directory by default) a chunk at a time, and refused past MAX_BYTES (413).
"""

import os
import tempfile
from pathlib import Path

from lowserve import web

UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", tempfile.gettempdir()))
MAX_BYTES = 10 * 2**20


async def handler(request: web.BaseRequest) -> web.Response:
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    saved = []
    async for part in await request.multipart():
        if not isinstance(part, web.BodyPartReader) or not part.filename:
            continue
        target = UPLOAD_DIR / Path(part.filename).name  # never a path the client chose
        size = 0
        with open(target, "wb") as f:
            while chunk := await part.read_chunk(65536):
                size += len(chunk)
                if size > MAX_BYTES:
                    f.close()
                    target.unlink()
                    raise web.HTTPRequestEntityTooLarge(MAX_BYTES, size)
                f.write(chunk)
        saved.append({"name": target.name, "bytes": size})
    return web.json_response({"saved": saved})
