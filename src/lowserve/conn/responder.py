"""Running handlers: one request at a time, each answered in turn, by one task.

A :class:`Responder` runs the handler of one request at a time and answers it. It
does no I/O and changes no connection state: what carries the requests (an
HTTP/1.1 connection, or one HTTP/2 stream) is its :class:`ResponderPort`, which
sends the answer and decides what comes next when it is done.

Each responder owns one long-lived task (``_serve``) that answers its requests in
turn. A request that arrives while that task is parked is not handed to it through
the event loop: its handler is started at once, from ``data_received``, *as* that task
(``asyncio.current_task()`` is the connection's task, and the step runs in the task's
own context). A handler that never waits — most of them — is answered within the same
callback: no future is resolved, no loop iteration passes. A handler that does wait is
handed to the task mid-flight (:class:`_Resume`) and continues there exactly as if the
task had started it, cancellation included.

Invariants:

* At most one handler runs per responder, and requests are answered in order.
* ``_work`` holds what the task must do next: a request to start, or a handler to
  resume. Only ``_kick`` runs handlers outside the task, and only while the task is
  parked on its waiter (or has not run yet), never re-entrantly.
* Without the asyncio hooks this needs (:mod:`~lowserve.conn.tasks`), ``_kick`` is
  never called: the waiter is woken and the task starts every handler itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import traceback
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Generator
from html import escape as html_escape
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

from ..api.exceptions import (
    ClientDisconnectedError,
    HTTPException,
    HTTPInternalServerError,
    RequestPayloadError,
)
from ..api.response import Response, StreamedBody, StreamResponse
from ..wire.head import REASONS
from . import step, tasks

if TYPE_CHECKING:
    from ..api.request import BaseRequest
    from ..options import ServerOptions
    from .metrics import RequestMetrics
    from .server import Server

__all__ = ["Responder", "ResponderPort"]

_current_task = tasks.current_task
_enter_task = tasks.enter_task
_leave_task = tasks.leave_task
_EAGER = tasks.EAGER


_PLAIN: dict[type, bool] = {}


def _plain(cls: type) -> bool:
    """Whether a response class sends itself as lowserve's own do (no override of
    ``prepare``, ``write`` or ``write_eof``), so it may take the synchronous path."""
    plain = _PLAIN.get(cls)
    if plain is None:
        base = Response if issubclass(cls, Response) else StreamResponse
        plain = _PLAIN[cls] = all(
            getattr(cls, name) is getattr(base, name) for name in ("prepare", "write", "write_eof")
        )
    return plain


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """A handler that returned some other awaitable, as a coroutine."""
    return await awaitable


class _Resume:
    """Continue, inside the connection's task, a handler that was started outside it."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        pending = self.first
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # cancellation and throw() reach the handler
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                if value is None:  # as a task resumes: from here on, delegate
                    # (each resumption then a C-level send, not a coro.send call)
                    return (yield from coro.__await__())
                try:
                    pending = coro.send(value)
                except StopIteration as stop:
                    return stop.value


class ResponderPort(Protocol):
    """What a :class:`Responder` needs from what carries its requests.

    For HTTP/1.1 that is the connection (:class:`~lowserve.conn.protocol.HttpProtocol`);
    an HTTP/2 stream can be one as well, since nothing here is HTTP/1.1's.
    """

    peer: str | None

    def send_whole(self, request: BaseRequest, resp: Response) -> bool:
        """Send *resp*, a response with its body in memory, in one go (``render_bytes``'s
        errors and ``StreamedBody`` propagate, before anything is sent). False, with
        nothing sent, when the peer can no longer be written to."""

    def is_open(self) -> bool:
        """Whether the peer can still be written to."""

    def answered(self, request: BaseRequest, keep_alive: bool | None) -> None:
        """*request*'s answer is finished; *keep_alive* is what its head told the client."""

    def close(self) -> None:
        """Give up: close what carries the requests (after what was already sent)."""

    def stopped(self) -> bool:
        """No request will come any more: the responder's task may end."""

    def finished(self) -> None:
        """The responder's task has ended (after ``stopped``, or cancelled): nothing
        of the responder runs any more."""


class Responder:
    """Runs one request's handler at a time, answers it, and hands the result to its port.

    The port (see :class:`ResponderPort`) says when a request starts
    (:meth:`start`) and is told when its answer is finished (``answered``); in
    between, this object owns the request, the task and whether a head went out.
    """

    __slots__ = (
        "_access",
        "_ctx",
        "_handler",
        "_metrics",
        "_opts",
        "_port",
        "_server",
        "_stepping",
        "_task",
        "_waiter",
        "_work",
        "head_sent",
        "loop",
        "request",
    )

    def __init__(
        self, server: Server, loop: asyncio.AbstractEventLoop, port: ResponderPort
    ) -> None:
        self._server = server
        self._opts: ServerOptions = server.options
        self._handler: Callable[[BaseRequest], Awaitable[StreamResponse]] = server.request_handler
        #: The access logger and --metrics' recorder (``Server.record_metrics``), or
        #: None: read once, here, as aiohttp makes its access logger per connection.
        self._access: Any = server.access_logger
        self._metrics: RequestMetrics | None = server.metrics
        self._port = port
        self.loop = loop
        #: The request being answered, and whether its head has been written.
        self.request: BaseRequest | None = None
        self.head_sent = False
        #: The task that runs handlers, what it must do next, the future it is parked
        #: on, its context, and whether ``_kick`` is running a step as it.
        self._task: asyncio.Task[None] | None = None
        self._work: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self._ctx: contextvars.Context | None = None
        self._stepping = False

    def start(self, request: BaseRequest) -> None:
        """Make *request* the one being answered, and get it going."""
        self.request = request
        self.head_sent = False
        task = self._task
        if task is None:
            if _EAGER:  # the eager steps run in the task's own context
                self._ctx = contextvars.copy_context()
                task = self._task = self.loop.create_task(self._serve(), context=self._ctx)
            else:
                task = self._task = self.loop.create_task(self._serve())
        self._work = request
        if self._stepping:
            return  # the running eager step picks it up when it ends
        current = _current_task(self.loop)
        if current is None and _EAGER:
            self._kick()  # from a transport callback: the task is parked or not yet started
        elif current is not task and self._waiter is not None:
            # Called from some other task (not from a transport): wake ours to do it.
            waiter, self._waiter = self._waiter, None
            waiter.set_result(None)
        # else: inside the task itself, whose loop takes ``_work`` next

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs the handlers (``request.task``)."""
        return self._task

    def lost(self) -> None:
        """The peer is gone: a parked task ends; a running handler is cancelled when
        ``handler_cancellation`` is on (as in aiohttp), else it runs to its end."""
        task = self._task
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if self._port.stopped():
                # Woken, it finds nothing to do and its port stopped: it returns. (A
                # cancellation would raise and catch a CancelledError in it: ~3,000
                # instructions more per connection closed, callgrind.)
                waiter.set_result(None)
            else:
                waiter.cancel()
        elif task is not None and not task.done() and self._opts.handler_cancellation:
            task.cancel()

    def release(self) -> None:
        """Let go of the port, once the task has ended and the port is done with this
        responder (the two refer to each other)."""
        self._port = None  # type: ignore[assignment]  # nothing runs here any more

    def cancel(self) -> None:
        """A forced stop: cancel the running handler, if any."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    def _kick(self) -> None:
        """Run pending work now, as the (parked) task; wake it if it must wait."""
        task: Any = self._task  # set by start, as is the context
        ctx: Any = self._ctx
        loop = self.loop
        while True:
            work = self._work
            if work is None or type(work) is _Resume:
                break
            self._work = None
            self._stepping = True
            _enter_task(loop, task)
            try:
                rest = ctx.run(self._step, work)
                if rest is None:
                    continue
                pending = ctx.run(rest.send, None)
            except StopIteration:
                continue
            except BaseException as exc:  # the handler raised CancelledError itself
                if not isinstance(exc, asyncio.CancelledError):  # that one _failed logged
                    self._server.logger.debug("handler stopped early", exc_info=exc)
                self._port.close()
                break
            finally:
                _leave_task(loop, task)
                self._stepping = False
            self._work = _Resume(rest, pending)
            break
        waiter = self._waiter
        if self._work is not None and waiter is not None:
            self._waiter = None
            waiter.set_result(None)

    async def _serve(self) -> None:
        """The responder's one task: does ``_work`` in turn, parked in between."""
        while True:
            work = self._work
            if work is None:
                if self._port.stopped():
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
                    rest = self._step(work)
                    if rest is not None:
                        await rest
            except asyncio.CancelledError:
                break
        self._task = None
        self._port.finished()

    def _step(self, request: BaseRequest) -> Coroutine[Any, Any, None] | None:
        """Start *request*'s handler, as the responder's task.

        A handler that finishes without waiting is answered here and then; otherwise
        the coroutine that finishes the job is returned for the task to await.
        """
        server = self._server
        access = self._access
        # perf_counter, not loop.time(): uvloop's clock counts milliseconds (%D, %Tf).
        # Compiled, time.perf_counter is a C clock_gettime (see _ctime.pxd).
        if self._metrics is not None or (access is not None and access.enabled):
            start = time.perf_counter()
        else:
            start = 0.0
        try:
            coro = self._handler(request)
            if type(coro) is not CoroutineType:
                coro = _awaited(coro)
            # Its return value, or a _Resume when it waited.
            if step.IN_C:  # compiled: PyIter_Send, no StopIteration (see _cstep.pxd)
                resp = step.first(coro, _Resume)
            else:  # pure: step.first inline (see step.IN_C)
                try:
                    resp = _Resume(coro, coro.send(None))
                except StopIteration as stop:
                    resp = stop.value
        except BaseException as exc:  # answered below: a raised HTTPException is not warned of
            resp = self._failed(request, exc)
        else:
            if type(resp) is _Resume:
                return self._resume(request, resp, start)
            if type(resp) is not Response:
                resp = self._checked(resp)
        # Answered outside the except blocks: finishing may parse the next pipelined
        # request, and httptools loses a callback's exception raised while another
        # exception is being handled.
        if type(resp) is Response and not self.head_sent:
            # The commonest answer, in short: what _answer does for a plain Response
            # (_done's work included: the access log, or --metrics' recorder, when on).
            try:
                sent = self._port.send_whole(request, resp)
            except Exception:  # e.g. a bad header: _answer renders again, reports it
                sent = False
            if sent:
                self.head_sent = True
                count = server.requests_count = server.requests_count + 1
                if count == server.requests_limit:
                    server.requests_limit_reached()
                if start:
                    self._timed(request, resp, start)
                self.request = None
                self._port.answered(request, resp.will_keep_alive)
                return None
        return self._answer(request, resp, start)

    async def _resume(self, request: BaseRequest, handler: _Resume, start: float) -> None:
        """The rest of a handler that waited, then its answer."""
        try:
            resp = self._checked(await handler)
        except BaseException as exc:
            resp = self._failed(request, exc)
        rest = self._answer(request, resp, start)
        if rest is not None:
            await rest

    def _checked(self, resp: Any) -> StreamResponse:
        if type(resp) is Response:
            return resp
        if isinstance(resp, StreamResponse):
            if isinstance(resp, HTTPException):
                warnings.warn(
                    "returning HTTPException object is deprecated (#2415) and will be "
                    "removed, please raise the exception instead",
                    DeprecationWarning,
                    stacklevel=2,
                )
            return resp
        self._server.logger.error(
            "Missing return statement on request handler"
            if resp is None
            else f"Web-handler should return a response instance, got {resp!r}"
        )
        return HTTPInternalServerError()

    def _failed(self, request: BaseRequest, exc: BaseException) -> StreamResponse:
        """The response for a handler that raised *exc* (cancellation propagates)."""
        if isinstance(exc, HTTPException):
            if exc.status == 413:
                exc.force_close()  # not worth draining a body known to be too large
                self._server.count_refusal("413")  # --metrics: e.g. past client_max_size
            return exc
        if isinstance(exc, asyncio.CancelledError):
            self._server.logger.debug("Ignored premature client disconnection")  # aiohttp's
            request.finish()
            self.request = None
            self._port.close()
            raise exc
        if isinstance(exc, RequestPayloadError):
            self._server.logger.debug(
                "bad request body from %s: %s %s", self._port.peer, exc.status, exc
            )
            return self._error_response(request, exc.status)
        if isinstance(exc, ClientDisconnectedError) or (
            isinstance(exc, ConnectionError) and not self._port.is_open()
        ):
            # The client went away. Only one that merely half-closed, its request cut
            # short, can still read an answer: 400 (for any other the send fails quietly).
            self._server.logger.debug(
                "client %s went away during %s %s", self._port.peer, request.method, request.path
            )
            return self._error_response(request, 400)
        if isinstance(exc, asyncio.TimeoutError):
            self._server.logger.debug("Request handler timed out.", exc_info=exc)  # aiohttp's
            return self._error_response(request, 504)
        if isinstance(exc, Exception):
            self._server.logger.exception(  # aiohttp's call
                "Error handling request from %s", request.remote, exc_info=exc
            )
            return self._error_response(request, 500, exc)
        raise exc

    def _answer(
        self, request: BaseRequest, resp: StreamResponse, start: float
    ) -> Coroutine[Any, Any, None] | None:
        """Send *resp*; returns a coroutine when a prepared stream still needs its end."""
        try:
            if not resp.prepared:
                if type(resp) is not Response and not _plain(type(resp)):
                    # A subclass that overrides prepare(), write() or write_eof(): called as
                    # aiohttp calls them, prepared and then ended.
                    return self._prepare_and_end(request, resp, start)
                try:
                    if not self._send(request, resp):
                        return self._end_stream(request, resp, start)
                except StreamedBody:  # a file or async iterable: sent as aiohttp sends it
                    return self._prepare_and_end(request, resp, start)
            elif not resp.eof_sent:
                return self._end_stream(request, resp, start)
        except BaseException as exc:
            failed = self._send_failed(request, exc)
            if failed is None:
                return None
            resp = failed
        self._done(request, resp, start)
        return None

    async def _prepare_and_end(
        self, request: BaseRequest, resp: StreamResponse, start: float
    ) -> None:
        """Send a response whose class overrides how it is sent, or whose body is a
        stream (a file, an async iterable): ``await prepare()``, then ``write_eof()``."""
        if self.head_sent:
            self._send_failed(request, ConnectionResetError("a response was already started"))
            return
        try:
            await resp.prepare(request)
        except BaseException as exc:
            failed = self._send_failed(request, exc)
            if failed is not None:
                self._done(request, failed, start)
            return
        await self._end_stream(request, resp, start)

    async def _end_stream(self, request: BaseRequest, resp: StreamResponse, start: float) -> None:
        """End a response the handler prepared but did not finish."""
        try:
            await resp.write_eof()
        except BaseException as exc:
            failed = self._send_failed(request, exc)
            if failed is None:
                return
            resp = failed
        self._done(request, resp, start)

    def _send_failed(self, request: BaseRequest, exc: BaseException) -> StreamResponse | None:
        """After sending a response raised *exc*: the 500 sent in its place, or None
        when the connection is lost (or was cancelled) and has been closed."""
        if not isinstance(exc, ConnectionError | asyncio.CancelledError):
            if not isinstance(exc, Exception):
                raise exc
            self._server.logger.exception(  # e.g. a header with CR or LF
                "Error handling request from %s", request.remote, exc_info=exc
            )
            resp = self._error_response(request, 500, exc)
            try:
                self._send(request, resp)
            except (ConnectionError, asyncio.CancelledError):
                pass
            else:
                return resp
        request.finish()
        self.request = None
        self._port.close()
        return None

    def _done(self, request: BaseRequest, resp: StreamResponse, start: float) -> None:
        server = self._server
        count = server.requests_count = server.requests_count + 1
        if count == server.requests_limit:
            server.requests_limit_reached()
        if start:
            self._timed(request, resp, start)
        self.request = None
        self._port.answered(
            request, resp.will_keep_alive if type(resp) is Response else bool(resp.keep_alive)
        )

    def _timed(self, request: BaseRequest, resp: StreamResponse, start: float) -> None:
        """Count an answered request (--metrics) and log it (the access log), *start*
        being when its handler started: non-zero only when one of them is on."""
        t = time.perf_counter() - start
        metrics = self._metrics
        access = self._access
        if metrics is None:
            access.log(request, resp, t)  # it was enabled when the request started
            return
        metrics.record(request, resp, t)
        if access is not None and access.enabled:
            access.log(request, resp, t)

    def _send(self, request: BaseRequest, resp: StreamResponse) -> bool:
        """Send an unprepared response: True when that is all (a ``Response`` leaves in
        one write), False when its body is still to be written (a stream's writer)."""
        if self.head_sent:
            # A head is already out (the handler prepared another response, then
            # failed): nothing more can be said on this connection.
            raise ConnectionResetError("a response was already started")
        if type(resp) is Response or (isinstance(resp, Response) and _plain(type(resp))):
            if not self._port.send_whole(request, resp):
                raise ClientDisconnectedError("Cannot write to closing transport")
            self.head_sent = True
            return True
        resp.start_writer(request)
        return False

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
