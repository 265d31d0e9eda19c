"""The supervisor: owns the listening sockets, runs the workers, talks to systemd.

Workers are fresh interpreters (``python -m lowserve.cli.worker``) that inherit the
sockets, so a ``SIGHUP`` restart loads new code, and a socket never stops listening
while workers come and go.

Signals:

* ``SIGTERM``/``SIGINT``: graceful stop within ``shutdown_timeout``; a second ``SIGINT``
  kills the workers at once.
* ``SIGHUP``: rolling restart, one worker at a time; each old worker is stopped only
  once its replacement serves. A replacement that fails to start aborts the restart
  and leaves the old workers serving.
* ``SIGTTIN``/``SIGTTOU``: one worker more, one fewer (never fewer than one).

Recycling by age (``--max-worker-age``, plus up to ``--max-worker-age-jitter``) and by
memory (``--max-worker-rss``, read from /proc once a second) is replacement-first: the
replacement starts, and the old worker is sent SIGTERM (a drain) only once it serves.
One such recycle runs at a time, never during a SIGHUP restart, so workers started
together do not all restart together. (``--max-requests`` is the worker's own count: it
starts draining at once, and its replacement starts at the same moment.)

A worker that dies is replaced at once, whatever killed it (the OOM killer's
SIGKILL included), even when no other worker is left serving; more than
``_CRASH_LIMIT`` deaths within ``_CRASH_WINDOW`` seconds stop the supervisor (exit
1), so that systemd's restart policy takes over from a crash loop. Workers that die
during the first start-up stop the supervisor with their exit code (2: the handler
cannot be loaded, 3: cannot serve), and the error line is all that is printed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from ..listening import QUEUE_WAIT
from . import systemd
from .admin import AdminServer, Health
from .config import Config, Exit
from .listeners import Listener, queued, stop_arrivals
from .metrics import Fleet, rss_bytes
from .proctitle import set_title

__all__ = ["Supervisor"]

log = logging.getLogger("lowserve.supervisor")
_START_TIMEOUT = 60.0
_CRASH_WINDOW = 30.0
_CRASH_LIMIT = 5


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    status: int  # read end of the worker's status pipe
    #: Its number, the lowest free when it started (1, 2, ...): the ``worker`` label.
    number: int = 1
    #: The supervisor's end of the worker's metrics socket (``--metrics``).
    metrics: socket.socket | None = None
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    #: Told to stop, or stopping by itself (recycling): its exit is no crash.
    retiring: bool = False
    #: Why it was retired (an exit cause of lowserve.cli.metrics.EXIT_CAUSES).
    cause: str = ""
    beat: float = field(default_factory=time.monotonic)
    #: Its --max-worker-age, jitter included (0: no limit).
    age_limit: float = 0.0
    #: Its replacement, while a recycle by age or memory waits for it to serve.
    successor: Worker | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Runs ``config.workers`` workers on *listeners* until a stop signal."""

    def __init__(
        self,
        config: Config,
        listeners: list[Listener],
        about: str = "",
        admin: Listener | None = None,
    ) -> None:
        self.config = config
        #: Said in the start-up line once every worker serves (the handler, the version).
        self.about = about
        self.listeners = listeners
        self.target = max(1, config.workers)
        self.workers: dict[int, Worker] = {}
        self.signals: list[int] = []
        self.ready_sent = False
        self.crashes: list[float] = []
        self.watchdog = systemd.watchdog_interval()
        self._last_ping = 0.0
        #: A rolling restart: old workers still to replace, and the replacement starting.
        self._restarting: list[Worker] = []
        self._replacement: Worker | None = None
        self._names = ""
        self._rss_checked = 0.0
        self._config_json = config.to_json()
        #: --metrics: the counts, what the probes read, and the listener serving them.
        self.health = Health()
        self.fleet: Fleet | None = None
        self.admin: AdminServer | None = None
        self._own_multiproc_dir: str | None = None
        if admin is not None:
            self.fleet = Fleet(self._multiproc_dir())
            self.admin = AdminServer(admin, self.fleet, self.health)

    def _multiproc_dir(self) -> str:
        """The directory for the user's prometheus_client multiprocess metrics: the
        environment's ``PROMETHEUS_MULTIPROC_DIR``, or a new one (removed at exit);
        emptied of earlier runs' files either way."""
        import tempfile

        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not path:
            path = self._own_multiproc_dir = tempfile.mkdtemp(prefix="lowserve-metrics-")
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(path, name))
        return path

    # -- workers --------------------------------------------------------------
    def spawn(self) -> Worker:
        read_end, write_end = os.pipe()
        fds = [listener.sock.fileno() for listener in self.listeners]
        taken = {w.number for w in self.workers.values()}
        number = next(n for n in range(1, len(taken) + 2) if n not in taken)
        env = dict(os.environ)
        env.update(
            LOWSERVE_WORKER_CONFIG=self._config_json,
            LOWSERVE_WORKER_FDS=",".join(map(str, fds)),
            LOWSERVE_WORKER_STATUS_FD=str(write_end),
            LOWSERVE_WORKER_NUMBER=str(number),
        )
        passed = [*fds, write_end]
        ours = theirs = None
        if self.fleet is not None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            ours.setblocking(False)
            env["LOWSERVE_WORKER_METRICS_FD"] = str(theirs.fileno())
            assert self.fleet.multiproc_dir is not None
            env["PROMETHEUS_MULTIPROC_DIR"] = self.fleet.multiproc_dir
            passed.append(theirs.fileno())
        env["LOWSERVE_WORKER_PARENT"] = str(os.getpid())
        if self.watchdog:
            env["LOWSERVE_WORKER_HEARTBEAT"] = str(self.watchdog / 2)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(key, None)  # only the supervisor talks to systemd
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lowserve.cli.worker"], pass_fds=passed, env=env
            )
        finally:
            os.close(write_end)
            if theirs is not None:
                theirs.close()
        os.set_blocking(read_end, False)
        worker = Worker(proc, read_end, number=number, metrics=ours)
        if self.config.max_worker_age:
            jitter = random.uniform(0, self.config.max_worker_age_jitter)
            worker.age_limit = self.config.max_worker_age + jitter
        self.workers[proc.pid] = worker
        if self.fleet is not None:
            self.fleet.started(proc.pid, number)
        log.debug("started worker %d", proc.pid)
        return worker

    def retire(self, worker: Worker, cause: str, sig: int = signal.SIGTERM) -> None:
        """Stop *worker* (gracefully, with SIGTERM); *cause* is counted at its exit."""
        worker.retiring = True
        worker.cause = worker.cause or cause
        try:
            worker.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def _read_status(self, worker: Worker) -> None:
        try:
            data = os.read(worker.status, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if b"R" in data and not worker.ready:
            worker.ready = True
            log.info("worker %d serving", worker.pid)
        if b"Q" in data and not worker.retiring:
            # --max-requests: it drains now; the loop starts its replacement at once.
            worker.retiring = True
            worker.cause = "recycle-requests"
            log.info("worker %d recycling: starting a replacement", worker.pid)
        if data:
            worker.beat = time.monotonic()

    def _reap(self) -> list[tuple[Worker, int]]:
        gone = []
        for pid, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is None:
                continue
            del self.workers[pid]
            os.close(worker.status)
            if worker.metrics is not None:
                self._read_metrics(worker)  # its last snapshot, sent after its drain
                worker.metrics.close()
                assert self.fleet is not None
                self.fleet.exited(pid, worker.cause or ("signal" if code < 0 else "crash"))
            gone.append((worker, code))
        if gone:
            self._update_health()
        return gone

    def _read_metrics(self, worker: Worker) -> None:
        """Every snapshot *worker* has sent and this process not yet read."""
        assert worker.metrics is not None and self.fleet is not None
        while True:
            try:
                datagram = worker.metrics.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not datagram:
                return
            self.fleet.receive(worker.pid, datagram)

    def _update_health(self) -> None:
        """What the probes and the ``lowserve_workers`` gauge read."""
        workers = list(self.workers.values())
        self.health.serving = sum(1 for w in workers if w.ready)
        self.health.started = self.ready_sent
        if self.fleet is not None:
            states = {
                "starting": sum(1 for w in workers if not w.ready and not w.retiring),
                "serving": sum(1 for w in workers if w.ready and not w.retiring),
                "retiring": sum(1 for w in workers if w.retiring),
            }
            with self.fleet.lock:
                self.fleet.states = states

    # -- the loop -------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def run(self) -> int:
        """Serve until stopped; returns the process exit code."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGCHLD,
        ):
            signal.signal(sig, self._on_signal)
        set_title(f"lowserve supervisor [{self.config.handler}]")
        if self.admin is not None:
            self.admin.start()
            log.info("metrics and health on %s", self.admin.listener.name)
        # One worker first: it loads the handler, and if it cannot, its one error line
        # is the only one (the loop starts the rest once it serves).
        self.spawn()
        names = ", ".join(listener.name for listener in self.listeners)
        try:
            return self._loop(wake_r, names)
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_r)
            os.close(wake_w)
            if self.admin is not None:
                self.admin.close()
            if self._own_multiproc_dir is not None:
                import shutil

                shutil.rmtree(self._own_multiproc_dir, ignore_errors=True)

    def _loop(self, wake_r: int, names: str) -> int:
        """Until a stop: wait, then do each job in turn; returns the exit code."""
        self._names = names
        while True:
            self._wait(wake_r)
            code = self._on_signals()
            if code is None:
                code = self._on_exits()
            if code is not None:
                return code
            self._advance_restart()
            self._advance_recycles()
            self._keep_target()
            self._announce_ready()
            self._update_health()
            self._ping_watchdog()

    def _wait(self, wake_r: int) -> None:
        """Sleep until a signal, a worker's status line, or a quarter second."""
        fds = [wake_r] + [w.status for w in self.workers.values()]
        fds += [w.metrics.fileno() for w in self.workers.values() if w.metrics is not None]
        readable, _, _ = select.select(fds, [], [], 0.25)
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        for worker in list(self.workers.values()):
            if worker.status in readable:
                self._read_status(worker)
            if worker.metrics is not None and worker.metrics.fileno() in readable:
                self._read_metrics(worker)

    def _on_signals(self) -> int | None:
        """Act on the signals received; the exit code once a stop is done."""
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                return self._stop(signal.Signals(sig).name)
            if sig == signal.SIGHUP and not self._restarting:
                log.info("SIGHUP: restarting workers one by one")
                systemd.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
                self._restarting = [w for w in self.workers.values() if not w.retiring]
            elif sig == signal.SIGTTIN:
                self.target += 1
                log.info("SIGTTIN: %d worker(s)", self.target)
            elif sig == signal.SIGTTOU and self.target > 1:
                self.target -= 1
                log.info("SIGTTOU: %d worker(s)", self.target)
        return None

    def _on_exits(self) -> int | None:
        """Account for the workers that exited; the exit code if serving must stop."""
        for worker, code in self._reap():
            if worker is self._replacement:
                log.error(
                    "a new worker %s before serving: restart abandoned, old workers keep serving",
                    _exit_text(code),
                )
                self._replacement, self._restarting = None, []
                systemd.notify(
                    "READY=1",
                    "STATUS=reload failed: a new worker "
                    f"{_exit_text(code)}; the old workers still serve on {self._names}",
                )
            elif worker.retiring:
                log.debug("worker %d stopped", worker.pid)
            elif not worker.ready:
                if not self.ready_sent:
                    if code not in (Exit.USAGE, Exit.START):  # those said why already
                        sys.stderr.write(
                            f"Error: a worker {_exit_text(code)} during start-up; stopping\n"
                        )
                    self._stop(None)  # the error said it all: nothing more is printed
                    return code if code in (Exit.USAGE, Exit.START) else Exit.FAILURE
                log.warning("a new worker %s before serving: starting another", _exit_text(code))
                self._crashed(worker, code)
            else:
                log.warning("worker %d %s: starting a new one", worker.pid, _exit_text(code))
                self._crashed(worker, code)
        if len(self.crashes) >= _CRASH_LIMIT:
            sys.stderr.write(
                f"Error: {_CRASH_LIMIT} workers died within {_CRASH_WINDOW:.0f} s; stopping\n"
            )
            self._stop(None)
            return Exit.FAILURE
        return None

    def _advance_restart(self) -> None:
        """A rolling restart (SIGHUP): one replacement at a time, each old worker
        retired once its replacement serves."""
        if not self._restarting:
            return
        replacement = self._replacement
        if replacement is None:
            self._replacement = self.spawn()
        elif replacement.ready:
            self.retire(self._restarting.pop(0), "reload")
            self._replacement = None
            if not self._restarting:
                log.info("restart complete")
                systemd.notify("READY=1", self._status(self._names))
        elif time.monotonic() - replacement.started > _START_TIMEOUT:
            self.retire(replacement, "start-timeout", signal.SIGKILL)

    def _advance_recycles(self) -> None:
        """Recycling by age and memory: start one replacement, then retire its
        predecessor once it serves (see the module's header)."""
        now = time.monotonic()
        pending = [w for w in self.workers.values() if w.successor is not None]
        for old in pending:
            new = old.successor
            assert new is not None
            if new.ready:
                old.successor = None
                self.retire(old, old.cause)
            elif new.pid not in self.workers or now - new.started > _START_TIMEOUT:
                # The replacement failed: the old worker keeps serving, and is tried again.
                log.warning("worker %d: its replacement did not serve; it keeps serving", old.pid)
                if new.pid in self.workers:
                    self.retire(new, "start-timeout", signal.SIGKILL)
                old.successor, old.retiring, old.cause = None, False, ""
                old.started = now  # its age counts again from here
        if pending or self._restarting or not self.ready_sent:
            return
        check_rss = self.config.max_worker_rss and now - self._rss_checked >= 1.0
        if check_rss:
            self._rss_checked = now
        for worker in list(self.workers.values()):
            if not worker.ready or worker.retiring:
                continue
            age = now - worker.started
            if worker.age_limit and age >= worker.age_limit:
                log.info(
                    "worker %d is %.0f s old (--max-worker-age): recycling it, replacement first",
                    worker.pid,
                    age,
                )
                self._recycle(worker, "recycle-age")
                return
            if check_rss:
                rss = rss_bytes(worker.pid) or 0
                limit = self.config.max_worker_rss * 2**20
                if rss > limit:
                    log.info(
                        "worker %d uses %d MiB, over --max-worker-rss %d: recycling it, "
                        "replacement first",
                        worker.pid,
                        rss // 2**20,
                        self.config.max_worker_rss,
                    )
                    self._recycle(worker, "recycle-memory")
                    return

    def _recycle(self, worker: Worker, cause: str) -> None:
        """Start *worker*'s replacement; it is retired once that one serves."""
        worker.retiring, worker.cause = True, cause
        worker.successor = self.spawn()

    def _keep_target(self) -> None:
        """Start or retire workers to keep ``target`` of them.

        During the first start-up, the rest wait until the first one serves (it
        loads the handler, and a failure is then said once). From then on a dead
        worker is replaced even when none serves: with one worker, the OOM killer's
        SIGKILL leaves none.
        """
        if self._restarting:
            return
        if not self.ready_sent and not any(w.ready for w in self.workers.values()):
            return
        live = [w for w in self.workers.values() if not w.retiring and w is not self._replacement]
        for _ in range(self.target - len(live)):
            self.spawn()
        for worker in live[self.target :]:
            self.retire(worker, "scale")

    def _announce_ready(self) -> None:
        """Once every worker serves: the start-up line, and READY=1 for systemd."""
        if (
            not self.ready_sent
            and self.workers
            and all(w.ready for w in self.workers.values() if not w.retiring)
        ):
            self.ready_sent = True
            about = f": {self.about}" if self.about else ""
            log.info("serving on %s with %d worker(s)%s", self._names, self.target, about)
            systemd.notify("READY=1", self._status(self._names), f"MAINPID={os.getpid()}")

    def _crashed(self, worker: Worker, code: int) -> None:
        now = time.monotonic()
        self.crashes = [t for t in self.crashes if now - t < _CRASH_WINDOW] + [now]

    def _status(self, names: str) -> str:
        return f"STATUS=serving on {names}; {self.target} worker(s)"

    def _ping_watchdog(self) -> None:
        if not self.watchdog or not self.ready_sent:
            return
        now = time.monotonic()
        if now - self._last_ping < self.watchdog:
            return
        # Ping only while every serving worker's event loop has beaten recently.
        stale = [w for w in self.workers.values() if w.ready and now - w.beat > 2 * self.watchdog]
        if stale:
            log.warning(
                "worker(s) %s stopped beating: withholding the watchdog ping",
                [w.pid for w in stale],
            )
            return
        self._last_ping = now
        systemd.notify("WATCHDOG=1")

    def _stop(self, cause: str | None) -> int:
        """Graceful stop: refuse new connections, let every worker drain, then exit.

        *cause* (the signal's name) is logged in the stop's first and last lines; a
        stop after a failure (None) logs neither, the error line having said why.

        The sockets this process bound come first: no new connection may join their
        queues, the workers accept the ones queued, and then the sockets are shut
        down, so a connection attempted from now on is refused. systemd's and
        inherited ones stay open, their queue kept for whoever passed them. A second
        SIGINT kills the workers, and the exit code is then 1.
        """
        self.health.stopping = True  # /readyz: 503 from now on
        if cause is not None:
            log.info("stopping (%s)", cause)
        systemd.notify("STOPPING=1")
        bound = [listener for listener in self.listeners if listener.bound]
        # No new connection joins a queue; the workers accept what is queued (a close
        # would reset it: see lowserve.listening), for at most QUEUE_WAIT seconds.
        waiting = [listener for listener in bound if stop_arrivals(listener)]
        started = time.monotonic()
        while queued(waiting) and time.monotonic() - started < QUEUE_WAIT:
            time.sleep(0.002)
        log.debug("accept queues emptied in %.0f ms", (time.monotonic() - started) * 1000)
        for listener in bound:
            # shutdown() acts on the socket that every worker shares, not on this
            # process's copy: from now on connections are refused, before any
            # worker answers "Connection: close" (whose client would reconnect
            # into a queue that is about to be reset).
            with contextlib.suppress(OSError):
                listener.sock.shutdown(socket.SHUT_RDWR)
            listener.sock.close()
        for worker in self.workers.values():
            self.retire(worker, "stop")
        deadline = time.monotonic() + self.config.shutdown_timeout + 5
        forced = False
        while self.workers:
            time.sleep(0.05)
            self._reap()
            if signal.SIGINT in self.signals and not forced:
                log.warning("SIGINT again: killing workers")
                forced = True
            self.signals.clear()
            if forced or time.monotonic() > deadline:
                for worker in self.workers.values():
                    self.retire(worker, "stop", signal.SIGKILL)
        for listener in self.listeners:  # socket files were unlinked by stop_arrivals
            listener.sock.close()
        if cause is not None or forced:
            log.info("stopped" + (" (workers killed)" if forced else ""))
        return Exit.FAILURE if forced else Exit.OK


def _exit_text(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``, from a Popen return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
