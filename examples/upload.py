"""A multipart upload streamed to disk under a size bound: ``lowserve examples.upload:handler``.

``POST /`` with ``multipart/form-data``: each file part is written to UPLOAD_DIR (a
temporary directory by default) a chunk at a time, and refused past MAX_BYTES (413).
A file is only ever created, never overwritten (409) and never reached through a link.
"""

import os
import tempfile
from pathlib import Path

from lowserve import web

UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", tempfile.gettempdir()))
MAX_BYTES = 10 * 2**20


def safe_name(filename: str) -> str:
    """The last component of the client's *filename*, or 400 if it names no file."""
    name = Path(filename).name  # never a path the client chose
    try:
        size = len(os.fsencode(name))
    except UnicodeError:
        size = 0
    if name in ("", ".", "..") or "\0" in name or not 0 < size <= 255:
        raise web.HTTPBadRequest(text="not a usable file name\n")
    return name


async def handler(request: web.BaseRequest) -> web.Response:
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    saved = []
    async for part in await request.multipart():
        if not isinstance(part, web.BodyPartReader) or not part.filename:
            continue
        target = UPLOAD_DIR / safe_name(part.filename)
        try:
            f = open(target, "xb")  # noqa: SIM115 - exclusive: no overwrite, no link followed
        except FileExistsError:
            raise web.HTTPConflict(text=f"{target.name} is there already\n") from None
        size = 0
        try:
            with f:
                while chunk := await part.read_chunk(65536):
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise web.HTTPRequestEntityTooLarge(MAX_BYTES, size)
                    f.write(chunk)
        except BaseException:
            target.unlink()  # nothing half-written is left behind
            raise
        saved.append({"name": target.name, "bytes": size})
    return web.json_response({"saved": saved})
