"""The command's configuration: built once by the CLI, read by the supervisor and workers.

``Config`` holds what concerns processes and sockets; its ``server`` field is the
:class:`~lowserve.options.ServerOptions` every connection uses. Workers receive it as
JSON, so everything in it is plain data.

A field made with :func:`~lowserve.optionspec.option` is also a ``lowserve`` flag
(``shutdown_timeout`` is ``--shutdown-timeout``): its default, help, type and bounds are
written here once, the command generates the flag, and ``Config(...)`` checks the bounds
as ``ServerOptions(...)`` does. The listening addresses and TLS files are composed
from several flags each (``--host``/``--port``/``--unix``/``--fd``/``--bind``,
``--ssl-*``), so the command spells those.
"""

from __future__ import annotations

import enum
import json
import os
import ssl
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..options import DEFAULT_BACKLOG, ServerOptions
from ..optionspec import check, option
from .logconfig import LEVELS

__all__ = ["Config", "Exit", "TLSError", "TLSOptions"]


class Exit(enum.IntEnum):
    """The command's exit codes, for the command, the supervisor and each worker."""

    OK = 0  #: stopped by a signal, gracefully
    FAILURE = 1  #: a failure at run time
    USAGE = 2  #: a bad command line, or a handler that cannot be loaded
    START = 3  #: serving could not start: address in use, permission, TLS files


_NOT_SENT = ("access_log", "access_log_class", "logger")


@dataclass
class TLSOptions:
    """Where the certificate and key are, and how clients are verified."""

    certfile: str
    keyfile: str | None = None
    keyfile_password: str | None = None
    ca_certs: str | None = None
    cert_reqs: int = int(ssl.CERT_NONE)
    ciphers: str | None = None

    @staticmethod
    def load_error(exc: BaseException) -> str:
        """The one-line message for what :meth:`context` raised."""
        if isinstance(exc, TLSError):
            return str(exc)
        return f"cannot load the TLS certificate or key: {exc}"

    def context(self) -> ssl.SSLContext:
        """A server SSLContext; :class:`TLSError` naming the file and the cause."""
        for flag, path in (
            ("--ssl-certfile", self.certfile),
            ("--ssl-keyfile", self.keyfile),
            ("--ssl-ca-certs", self.ca_certs),
        ):
            if path is not None and not os.access(path, os.R_OK):
                why = "no such file" if not os.path.exists(path) else "permission denied"
                raise TLSError(f"{flag} {path}: {why}")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        keyfile = self.keyfile or self.certfile
        key_flag = "--ssl-keyfile" if self.keyfile else "--ssl-certfile"
        with open(self.certfile, "rb") as fh:
            cert_pem = fh.read()
        with open(keyfile, "rb") as fh:
            key_pem = fh.read()
        # OpenSSL says "PEM lib" for most of what follows: look first, and name the cause.
        if b"BEGIN CERTIFICATE" not in cert_pem:
            swapped = b"PRIVATE KEY" in cert_pem
            raise TLSError(
                f"--ssl-certfile {self.certfile} holds no PEM certificate"
                + (" (it holds a key: are the certificate and key swapped?)" if swapped else "")
            )
        if b"PRIVATE KEY" not in key_pem:
            raise TLSError(f"{key_flag} {keyfile} holds no PEM private key")
        encrypted = b"ENCRYPTED" in key_pem
        if encrypted and self.keyfile_password is None:
            raise TLSError(
                f"the key in {keyfile} is encrypted: give --ssl-keyfile-password-file "
                "(or --ssl-keyfile-password)"
            )
        try:
            ctx.load_cert_chain(
                self.certfile, self.keyfile, self.keyfile_password if encrypted else None
            )
        except ssl.SSLError as exc:
            reason = f"{exc.reason} {exc}".upper()
            if "KEY_VALUES_MISMATCH" in reason:
                raise TLSError(
                    f"the key in {keyfile} does not match the certificate in {self.certfile}"
                ) from None
            if encrypted:
                raise TLSError(f"cannot decrypt the key in {keyfile}: wrong password") from None
            raise TLSError(f"cannot load {self.certfile} / {keyfile}: {exc}") from None
        ctx.verify_mode = ssl.VerifyMode(self.cert_reqs)
        if self.ca_certs:
            try:
                ctx.load_verify_locations(self.ca_certs)
            except ssl.SSLError as exc:
                raise TLSError(f"--ssl-ca-certs {self.ca_certs}: {exc.reason or exc}") from None
        if self.ciphers:
            try:
                ctx.set_ciphers(self.ciphers)
            except ssl.SSLError:
                raise TLSError(f"--ssl-ciphers {self.ciphers!r}: no cipher matches") from None
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


class TLSError(ValueError):
    """The TLS files or options cannot make a context; the message names file and cause."""


@dataclass
class Config:
    """Everything ``lowserve`` was asked to do."""

    handler: str
    factory: bool = option(
        False, "HANDLER names a zero-argument function (sync or async) that returns the handler."
    )
    app_dir: str | None = option(".", "Put this directory first on sys.path.", path="dir")
    binds: list[str] = field(default_factory=list)
    unix_mode: int | None = option(
        None,
        "Permissions of the --unix socket file, in octal (660).",
        octal=True,
        metavar="MODE",
        kind=int,
    )
    reuse_port: bool = option(False, "Set SO_REUSEPORT on TCP sockets.")
    backlog: int = option(
        DEFAULT_BACKLOG, "Listen backlog (the kernel caps it at net.core.somaxconn).", minimum=1
    )
    tls: TLSOptions | None = None
    workers: int = option(
        1,
        "Worker processes sharing the sockets (also read from $WEB_CONCURRENCY).",
        minimum=1,
        envvars=("WEB_CONCURRENCY",),
    )
    reload: bool = option(False, "Restart when code changes (development only).")
    reload_dirs: list[str] = option(
        (),
        "With --reload, watch this directory (repeatable) instead of the app's own "
        "package and --app-dir.",
        flag="--reload-dir",
        multiple=True,
        metavar="DIR",
    )
    reload_includes: list[str] = option(
        ("*.py",),
        "With --reload, restart on changes to files matching this pattern (repeatable).",
        flag="--reload-include",
        multiple=True,
        metavar="GLOB",
    )
    reload_excludes: list[str] = option(
        (".*", "*.py[cod]", "*.sw.*", "~*"),
        "With --reload, ignore files matching this pattern (repeatable).",
        flag="--reload-exclude",
        multiple=True,
        metavar="GLOB",
    )
    shutdown_timeout: float = option(
        60.0,
        "Seconds in-flight requests get to finish on a graceful stop.",
        minimum=0,
    )
    max_requests: int = option(
        0,
        "A worker restarts itself gracefully after this many requests (0: never).",
        minimum=0,
    )
    max_requests_jitter: int = option(
        0, "Add up to this many to --max-requests, per worker.", minimum=0
    )
    max_worker_age: float = option(
        0.0,
        "Replace a worker after this many seconds, replacement first (0: never).",
        minimum=0,
        metavar="SECONDS",
    )
    max_worker_age_jitter: float = option(
        0.0,
        "Add up to this many seconds to --max-worker-age, per worker.",
        minimum=0,
        metavar="SECONDS",
    )
    max_worker_rss: int = option(
        0,
        "Replace a worker whose resident memory exceeds this many MiB, replacement first "
        "(0: never; checked each second).",
        minimum=0,
        metavar="MIB",
    )
    log_level: str = option("info", "How much to log.", choices=LEVELS)
    access_log: bool = option(
        True, "Log one line per response.", flag="--access-log/--no-access-log"
    )
    log_config: str | None = option(
        None,
        "A logging configuration file (replaces --log-level): .json, or .yaml/.yml with "
        "PyYAML, as a dictConfig; .ini, .conf or any other name as a fileConfig.",
        path="file",
        kind=str,
    )
    no_server_header: bool = option(False, "Send no Server header.")
    metrics: str | None = option(
        None,
        "Serve /metrics (Prometheus), /healthz and /readyz on this address, HOST:PORT or "
        "unix:PATH, from the supervisor (needs prometheus_client: lowserve[metrics]).",
        metavar="ADDRESS",
        kind=str,
    )
    server: ServerOptions = field(default_factory=ServerOptions)

    def __post_init__(self) -> None:
        check(self)

    def server_options(self) -> ServerOptions:
        """The options for this process's Server, with its loggers attached."""
        import logging

        opts = ServerOptions(
            **{
                f.name: getattr(self.server, f.name)
                for f in fields(ServerOptions)
                if f.name not in _NOT_SENT
            }
        )
        opts.access_log = logging.getLogger("lowserve.access") if self.access_log else None
        if self.no_server_header:
            opts.server_header = None
        return opts

    def to_json(self) -> str:
        data = asdict(self)
        data["server"] = {
            f.name: getattr(self.server, f.name)
            for f in fields(ServerOptions)
            if f.name not in _NOT_SENT
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Config:
        data: dict[str, Any] = json.loads(text)
        server = data.pop("server")
        server["forwarded_allow_ips"] = tuple(server["forwarded_allow_ips"])
        server["access_log_exclude"] = tuple(server["access_log_exclude"])
        tls = data.pop("tls")
        return cls(
            **data,
            tls=TLSOptions(**tls) if tls else None,
            server=ServerOptions(**server),
        )
