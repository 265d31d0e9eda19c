"""The command's configuration: built once by the CLI, read by the supervisor and workers.

``Config`` holds what concerns processes and sockets; its ``server`` field is the
:class:`~lowserve.options.ServerOptions` every connection uses. Workers receive it as
JSON, so everything in it is plain data.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .options import ServerOptions

__all__ = ["Config", "TLSOptions"]

_NOT_SENT = ("access_log", "access_log_class")


@dataclass
class TLSOptions:
    """Where the certificate and key are, and how clients are verified."""

    certfile: str
    keyfile: str | None = None
    keyfile_password: str | None = None
    ca_certs: str | None = None
    cert_reqs: int = int(ssl.CERT_NONE)
    ciphers: str | None = None

    def context(self) -> ssl.SSLContext:
        """A server SSLContext; OSError/ssl.SSLError when a file is unreadable or wrong."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.certfile, self.keyfile, self.keyfile_password)
        ctx.verify_mode = ssl.VerifyMode(self.cert_reqs)
        if self.ca_certs:
            ctx.load_verify_locations(self.ca_certs)
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


@dataclass
class Config:
    """Everything ``lowserve`` was asked to do."""

    handler: str
    factory: bool = False
    app_dir: str | None = "."
    binds: list[str] = field(default_factory=list)
    unix_mode: int | None = None
    reuse_port: bool = False
    backlog: int = 2048
    tls: TLSOptions | None = None
    workers: int = 1
    reload: bool = False
    shutdown_timeout: float = 60.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    log_level: str = "info"
    access_log: bool = True
    log_config: str | None = None
    no_server_header: bool = False
    server: ServerOptions = field(default_factory=ServerOptions)

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
        tls = data.pop("tls")
        return cls(
            **data,
            tls=TLSOptions(**tls) if tls else None,
            server=ServerOptions(**server),
        )
