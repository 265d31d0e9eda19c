"""The smallest lowserve handler: ``lowserve examples.hello:handler``."""

from lowserve import web


async def handler(request: web.BaseRequest) -> web.Response:
    """Answer every path and method with a greeting."""
    return web.Response(text=f"Hello from lowserve: {request.method} {request.path}\n")


if __name__ == "__main__":
    import os

    web.run(handler, host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
