"""Running handlers: one task per connection, and eager first steps inside it.

Each connection owns one long-lived task (``_serve``) that answers its requests in
turn. A request that arrives while that task is parked is not handed to it through
the event loop: its handler is started at once, from ``data_received``, *as* that task
(``asyncio.current_task()`` is the connection's task, and the step runs in the task's
own context). A handler that never waits — most of them — is answered within the same
callback: no future is resolved, no loop iteration passes. A handler that does wait is
handed to the task mid-flight (:class:`_Resume`) and continues there exactly as if the
task had started it, cancellation included.

Invariants:

* At most one handler runs per connection, and requests are answered in order.
* ``_work`` holds what the task must do next: a request to start, or a handler to
  resume. Only ``_kick`` runs handlers outside the task, and only while the task is
  parked on its waiter (or has not run yet), never re-entrantly.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator
from html import escape as html_escape
from typing import TYPE_CHECKING, Any

from .exceptions import HTTPException, HTTPInternalServerError
from .http import REASONS
from .response import Response, StreamResponse
from .state import ConnState
from .streams import EMPTY_STREAM
from .wire import WireError

if TYPE_CHECKING:
    from collections import deque

    from .options import ServerOptions
    from .request import BaseRequest
    from .server import Server
    from .streams import BodyStream
    from .wire import BodyDecoder

__all__ = ["Dispatch"]

log = logging.getLogger("lowserve.server")

_current_task = asyncio.current_task
_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
_IDLE, _HEAD, _BUSY, _LINGER = ConnState.IDLE, ConnState.HEAD, ConnState.BUSY, ConnState.LINGER


class _Resume:
    """Continue, inside the connection's task, a handler that was started outside it."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, None]:
        coro = self.coro
        pending = self.first
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # cancellation and throw() reach the handler
                try:
                    pending = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    pending = coro.send(value)
                except StopIteration:
                    return


class Dispatch(asyncio.Protocol):
    """The request-running half of :class:`~lowserve.protocol.HttpProtocol`.

    The attributes and methods declared here belong to the connection; they are
    listed so that this half states what it relies on.
    """

    __slots__ = (
        "_body",
        "_busy",
        "_closing",
        "_ctx",
        "_decoder",
        "_fresh",
        "_handler",
        "_head_sent",
        "_in_head",
        "_opts",
        "_paused",
        "_queue",
        "_request",
        "_server",
        "_stepping",
        "_task",
        "_unparsed",
        "_waiter",
        "_work",
        "loop",
        "peer",
        "state",
        "transport",
    )

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None
    peer: str | None
    state: ConnState
    _server: Server
    _opts: ServerOptions
    _handler: Callable[[BaseRequest], Awaitable[StreamResponse]]
    _busy: bool
    _fresh: bool
    _closing: bool
    _in_head: bool
    _paused: bool
    _head_sent: bool
    _request: BaseRequest | None
    _task: asyncio.Task[None] | None
    _waiter: asyncio.Future[None] | None
    _work: Any
    _ctx: contextvars.Context | None
    _stepping: bool
    _queue: deque[BaseRequest | WireError]
    _body: BodyStream | None
    _decoder: BodyDecoder | None
    _unparsed: bytearray | None

    def _set_state(self, state: ConnState) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def write_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def queue_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def _update_reading(self, body_full: bool | None = None) -> None:
        raise NotImplementedError

    def _feed_sliced(self, data: bytes) -> None:
        raise NotImplementedError

    def _reply_error(self, err: WireError) -> None:
        raise NotImplementedError

    def _start(self, request: BaseRequest) -> None:
        """Make *request* the one being answered, and get it going."""
        self._busy = True
        self._fresh = False
        self._request = request
        self._head_sent = False
        self._set_state(_BUSY)
        task = self._task
        if task is None:
            self._ctx = contextvars.copy_context()
            task = self._task = self.loop.create_task(self._serve(), context=self._ctx)
        request._task = task
        self._work = request
        if self._stepping:
            return  # the running eager step picks it up when it ends
        current = _current_task(self.loop)
        if current is None:
            self._kick()  # from a transport callback: the task is parked or not yet started
        elif current is not task and self._waiter is not None:
            # Called from some other task (not from a transport): wake ours to do it.
            waiter, self._waiter = self._waiter, None
            waiter.set_result(None)
        # else: inside the task itself, whose loop takes ``_work`` next

    def _kick(self) -> None:
        """Run pending work now, as the (parked) connection task; wake it if it must wait."""
        task = self._task
        assert task is not None and self._ctx is not None
        loop = self.loop
        while True:
            work = self._work
            if work is None or type(work) is _Resume:
                break
            self._work = None
            coro = self._run(work)
            self._stepping = True
            _enter_task(loop, task)
            try:
                pending = self._ctx.run(coro.send, None)
            except StopIteration:
                continue
            except BaseException as exc:  # the handler raised CancelledError itself
                log.debug("handler stopped early", exc_info=exc)
                self.close()
                break
            finally:
                _leave_task(loop, task)
                self._stepping = False
            self._work = _Resume(coro, pending)
            break
        waiter = self._waiter
        if self._work is not None and waiter is not None:
            self._waiter = None
            waiter.set_result(None)

    async def _serve(self) -> None:
        """The connection's one task: does ``_work`` in turn, parked in between."""
        while True:
            work = self._work
            if work is None:
                if self.state in (ConnState.CLOSING, ConnState.CLOSED, ConnState.UPGRADED):
                    break
                waiter = self._waiter = self.loop.create_future()
                try:
                    await waiter
                except asyncio.CancelledError:
                    break
                continue
            self._work = None
            try:
                if type(work) is _Resume:
                    await work
                else:
                    await self._run(work)
            except asyncio.CancelledError:
                break
        self._task = None

    async def _run(self, request: BaseRequest) -> None:
        server = self._server
        access = server.access_logger
        if access is not None and not access.enabled:
            access = None
        start = self.loop.time() if access is not None else 0.0
        try:
            resp = await self._handler(request)
            if type(resp) is not Response and not isinstance(resp, StreamResponse):
                log.error(
                    "Missing return statement on request handler"
                    if resp is None
                    else f"Web-handler should return a response instance, got {resp!r}"
                )
                resp = HTTPInternalServerError()
        except HTTPException as exc:
            resp = exc
        except asyncio.CancelledError:
            self._request = None
            self.close()
            raise
        except asyncio.TimeoutError:
            log.debug("request handler timed out", exc_info=True)
            resp = self._error_response(request, 504)
        except Exception as exc:
            log.error("Error handling request from %s", self.peer, exc_info=exc)
            resp = self._error_response(request, 500, exc)
        try:
            try:
                self._send(request, resp)
                if resp.prepared and not resp._eof_sent:
                    await resp.write_eof()
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception as exc:  # e.g. a header value with CR/LF
                log.error("Error handling request from %s", self.peer, exc_info=exc)
                resp = self._error_response(request, 500, exc)
                self._send(request, resp)
        except (ConnectionError, asyncio.CancelledError):
            self._request = None
            self.close()
            return
        server.requests_count += 1
        if access is not None:
            access.log(request, resp, self.loop.time() - start)
        self._response_done(request, bool(resp.keep_alive))

    def _send(self, request: BaseRequest, resp: StreamResponse) -> None:
        """Send an unprepared response; ``Response`` leaves in one write (the fast path)."""
        if resp.prepared:
            return
        if self._head_sent:
            # A head is already out (the handler prepared another response, then
            # failed): nothing more can be said on this connection.
            raise ConnectionResetError("a response was already started")
        if type(resp) is Response or isinstance(resp, Response):
            data = resp._render(request)
            self._head_sent = True
            if self.transport is None or self.transport.is_closing():
                raise ConnectionResetError("Cannot write to closing transport")
            self.queue_bytes(data)
        else:
            resp._start(request)

    def _error_response(
        self, request: BaseRequest, status: int, exc: BaseException | None = None
    ) -> Response:
        """aiohttp's error page: text, or HTML when the client accepts it."""
        ctype = "text/plain"
        title = f"{status} {REASONS.get(status, '')}"
        if status == 500:
            msg = "Server got itself in trouble"
            tb = None
            if self._opts.debug and exc is not None:
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            if "text/html" in request.headers.get("Accept", ""):
                if tb:
                    msg = f"<h2>Traceback:</h2>\n<pre>{html_escape(tb)}</pre>"
                message = (
                    f"<html><head><title>{title}</title></head><body>\n<h1>{title}</h1>"
                    f"\n{msg}\n</body></html>\n"
                )
                ctype = "text/html"
            else:
                message = title + "\n\n" + (tb or msg)
            resp = Response(status=status, text=message, content_type=ctype)
        else:
            resp = Response(status=status, content_type=ctype)
        resp.force_close()
        return resp

    def _response_done(self, request: BaseRequest, keep_alive: bool) -> None:
        self._request = None
        self._busy = False
        if self.state is ConnState.UPGRADED:
            return
        if not keep_alive or self.transport is None:
            self.close()
            return
        body = request.content
        if body is not EMPTY_STREAM and not body.is_eof():
            # Discard the rest of the unread body so the next request can be parsed.
            body._buffer.clear()
            body._consumed(body._size)
            body._size = 0
            self._body = None
            self._decoder = None
            self._set_state(_LINGER)
            self._update_reading()
            return
        self._next()

    def _next(self) -> None:
        if self._queue:
            item = self._queue.popleft()
            if isinstance(item, WireError):
                self._reply_error(item)
                return
            self._start(item)
        elif self._closing:
            self.close()
            return
        else:
            self._set_state(_HEAD if self._in_head else _IDLE)
        unparsed = self._unparsed
        if unparsed is not None:
            self._unparsed = None
            self._feed_sliced(bytes(unparsed))
        if self._paused:
            self._update_reading()
