"""A small resource API in one handler: ``lowserve examples.json_api:handler``.

    GET /items            list          POST /items        create (JSON body)
    GET /items/<id>       one           DELETE /items/<id> remove

Errors are JSON too, raised as HTTPException subclasses.
"""

import json

from lowserve import web

ITEMS: dict[int, dict[str, object]] = {}


class JSONError(web.HTTPException):
    """An HTTP error whose body is ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


async def handler(request: web.BaseRequest) -> web.Response:
    parts = [p for p in request.path.split("/") if p]
    if not parts or parts[0] != "items" or len(parts) > 2:
        raise JSONError(404, "no such resource")
    if len(parts) == 1:
        if request.method == "GET":
            return web.json_response([ITEMS[k] for k in sorted(ITEMS)])
        if request.method == "POST":
            try:
                data = await request.json()
            except (ValueError, RecursionError):  # RecursionError: nested too deep
                raise JSONError(400, "the body is not JSON") from None
            if not isinstance(data, dict) or not isinstance(data.get("name"), str):
                raise JSONError(422, "an item needs a name")
            key = max(ITEMS, default=0) + 1
            item: dict[str, object] = {"id": key, "name": data["name"]}
            ITEMS[key] = item
            return web.json_response(item, status=201)
        raise JSONError(405, f"{request.method} is not allowed here")
    # ASCII digits only: int() also takes "+1", "1_0" and other scripts' digits
    if not (parts[1].isascii() and parts[1].isdigit() and len(parts[1]) <= 18):
        raise JSONError(404, "no such item")
    key = int(parts[1])
    if key not in ITEMS:
        raise JSONError(404, "no such item")
    if request.method == "GET":
        return web.json_response(ITEMS[key])
    if request.method == "DELETE":
        del ITEMS[key]
        return web.Response(status=204)
    raise JSONError(405, f"{request.method} is not allowed here")
