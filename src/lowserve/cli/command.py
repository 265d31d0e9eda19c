"""The ``lowserve`` command: serve ``module:handler`` from a shell or a systemd unit.

Every flag can also be set as ``LOWSERVE_<FLAG>`` in the environment (``--max-requests``
is ``LOWSERVE_MAX_REQUESTS``). Most flags are generated from the option specs
(:mod:`lowserve.optionspec`): the per-connection ones of
:class:`~lowserve.options.ServerOptions`, the per-process ones of
:class:`~lowserve.cli.config.Config`, where each is defined, documented and bounded once.
Only the flags that compose one setting out of several (addresses, TLS files) are
spelled here.

Exit codes: 0 after a signal-driven graceful stop, 1 on a runtime failure, 2 on a usage
or handler error, 3 when serving could not start (address in use, permission denied,
unreadable TLS files).
"""

from __future__ import annotations

import inspect
import logging
import os
import platform
import re
import ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from .._build import build
from .._version import __version__
from ..options import DEFAULT_HOST, DEFAULT_PORT, ServerOptions
from ..optionspec import OptionSpec, specs
from ..serve import new_event_loop
from .config import Config, Exit, TLSOptions
from .listeners import BindError, open_admin, open_listeners, parse_bind
from .loader import LoadError, describe, load_handler
from .logconfig import LogConfigError, setup_logging

if TYPE_CHECKING:
    import subprocess

__all__ = ["main"]

log = logging.getLogger("lowserve")


def _version_text() -> str:
    try:
        import uvloop

        loop = f"uvloop {getattr(uvloop, '__version__', '?')}"
    except ImportError:  # pragma: no cover
        loop = "asyncio"
    py = f"{platform.python_implementation()} {platform.python_version()}"
    return f"lowserve {__version__} ({py}, {loop}, {platform.system()}, {build()})"


class _Checked:
    """A number flag refused by its option's own check (:meth:`OptionSpec.problem`, as
    ``ServerOptions(...)`` refuses it); click shows the spec's range in ``--help``."""

    spec: OptionSpec

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        assert isinstance(self, click.ParamType)
        return _checked(self, self.spec, value, param, ctx)

    def _describe_range(self) -> str:
        return self.spec.range_text()


class _Int(_Checked, click.IntRange):
    def __init__(self, spec: OptionSpec) -> None:
        low, high = spec.minimum, spec.maximum
        super().__init__(None if low is None else int(low), None if high is None else int(high))
        self.spec = spec


class _Float(_Checked, click.FloatRange):
    def __init__(self, spec: OptionSpec) -> None:
        super().__init__(spec.minimum, spec.maximum)
        self.spec = spec


def _checked(
    kind: click.ParamType[Any],
    spec: OptionSpec,
    value: Any,
    param: click.Parameter | None,
    ctx: click.Context | None,
) -> Any:
    """*value* read as *spec*'s number, or click's one-line error (``0 is not in the
    range x>=16.``)."""
    if not isinstance(value, spec.kind):
        try:
            value = spec.kind(value)
        except (TypeError, ValueError):
            kind.fail(f"{value!r} is not a valid {kind.name}.", param, ctx)
    problem = spec.problem(value)
    if problem is not None:
        kind.fail(f"{value} {problem}.", param, ctx)
    return value


def _octal(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--unix-mode``: a file mode written in octal."""
    if value is None:
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an octal mode like 660") from None
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"'{value}' is not a file mode")
    return mode


def _click_option(spec: OptionSpec) -> Callable[[Any], Any]:
    """The click option made from one option's spec (click's types, and the variables
    ``LOWSERVE_<FLAG>`` and any other the spec names)."""
    kw: dict[str, Any] = {"help": spec.help, "envvar": list(spec.variables)}
    if spec.kind is bool and "/" not in spec.flags:
        kw["is_flag"] = True
    if spec.bounded:
        kw["type"] = _Float(spec) if spec.kind is float else _Int(spec)
    elif spec.choices:
        kw["type"] = click.Choice(spec.choices, case_sensitive=False)
    elif spec.path:
        kw["type"] = click.Path(
            exists=True, file_okay=spec.path == "file", dir_okay=spec.path == "dir"
        )
    if spec.octal:
        kw["callback"] = _octal
    if spec.multiple:
        kw["multiple"] = True
    if spec.metavar:
        kw["metavar"] = spec.metavar
    default = spec.default
    if spec.separator is not None:
        default = spec.separator.join(default)
    return click.option(spec.flags, spec.name, default=default, **kw)


def _flags(*classes: type) -> Callable[[Any], Any]:
    """One click option per flag of the dataclasses *classes*, in their field order."""

    def decorate(fn: Any) -> Any:
        for spec in reversed([s for cls in classes for s in specs(cls) if s.cli]):
            fn = _click_option(spec)(fn)
        return fn

    return decorate


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def _as_flags(message: str) -> str:
    """*message* from ServerOptions, with its field names spelled as flags."""
    for spec in specs(ServerOptions):
        if "_" in spec.name:  # (one-word names are also plain words)
            message = re.sub(rf"\b{spec.name}\b", spec.flags, message)
    return message


#: uvicorn's and gunicorn's names for flags lowserve has under another name.
_OTHER_SERVERS_NAMES = {
    # uvicorn
    "--timeout-keep-alive": "--keepalive-timeout",
    "--timeout-graceful-shutdown": "--shutdown-timeout",
    "--limit-max-requests": "--max-requests",
    "--uds": "--unix",
    # gunicorn
    "-w": "--workers",
    "-b": "--bind",
    "--keep-alive": "--keepalive-timeout",
    "--graceful-timeout": "--shutdown-timeout",
    "--worker-connections": "--limit-concurrency",
    "--limit-request-line": "--max-line-size",
    "--limit-request-fields": "--max-headers",
    "--limit-request-field_size": "--max-field-size",
    "--limit-request-field-size": "--max-field-size",
    "--certfile": "--ssl-certfile",
    "--keyfile": "--ssl-keyfile",
    "--ca-certs": "--ssl-ca-certs",
    "--ciphers": "--ssl-ciphers",
    "--access-logformat": "--access-log-format",
    "--log-config-json": "--log-config",
}


def _usage_error(exc: click.UsageError) -> str:
    """The one line a usage error is said in; an unknown flag that uvicorn or gunicorn
    spells so is answered with lowserve's name for it."""
    if isinstance(exc, click.NoSuchOption) and exc.option_name in _OTHER_SERVERS_NAMES:
        ours = _OTHER_SERVERS_NAMES[exc.option_name]
        return (
            f"Error: No such option: {exc.option_name} "
            f"(lowserve calls it {ours}; see lowserve --help)"
        )
    return f"Error: {exc.format_message()} (see lowserve --help)"


class _Command(click.Command):
    """click's command, with a usage error said on one line (``Error: ... (see
    lowserve --help)``, exit code 2) instead of the usage, a hint and the error."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            click.echo(_usage_error(exc), err=True)
            sys.exit(Exit.USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.command(
    cls=_Command,
    context_settings={
        "show_default": True,
        "help_option_names": ["-h", "--help"],
    },
)
@click.argument("handler", required=False, envvar="LOWSERVE_HANDLER")
@click.option(
    "--check",
    is_flag=True,
    help="Resolve the handler, say what it is, and exit (for ExecStartPre=).",
)
@click.option("--host", default=None, help=f"Address to listen on  [default: {DEFAULT_HOST}]")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Port to listen on  [default: {DEFAULT_PORT}]",
)
@click.option("--unix", "unix_path", metavar="PATH", help="Listen on a UNIX socket.")
@click.option("--fd", type=int, metavar="N", help="Listen on an inherited socket.")
@click.option(
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDR",
    help="HOST:PORT, [::1]:PORT, unix:PATH or fd://N; repeatable.",
)
@click.option("--ssl-certfile", type=click.Path(dir_okay=False), help="TLS certificate (PEM).")
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False), help="TLS private key (PEM).")
@click.option("--ssl-keyfile-password", help="Password of an encrypted --ssl-keyfile.")
@click.option(
    "--ssl-keyfile-password-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A file holding that password (its first line), read once at start.",
)
@click.option(
    "--ssl-ca-certs",
    type=click.Path(dir_okay=False),
    help="CA certificates to verify clients with.",
)
@click.option(
    "--ssl-cert-reqs",
    type=click.Choice(list(_CERT_REQS)),
    default="none",
    help="Whether clients must present a certificate.",
)
@click.option("--ssl-ciphers", help="OpenSSL cipher list.")
@_flags(Config, ServerOptions)
@click.version_option(version=__version__, message=_version_text(), prog_name="lowserve")
def main(
    handler: str | None,
    check: bool,
    host: str | None,
    port: int | None,
    unix_path: str | None,
    fd: int | None,
    binds: tuple[str, ...],
    **kw: Any,
) -> None:
    """Serve HANDLER, an async function `handler(request)` named as module:attribute
    (pkg.mod:obj.method) or path/to/app.py:attribute.

    \b
      lowserve mymod:handler --port 8080
      lowserve mymod:handler --unix /tmp/sock --unix-mode 660
      lowserve pkg.api:make_handler --factory --workers 4 --bind 0.0.0.0:8080
    """
    if not handler:
        raise click.UsageError("missing HANDLER (module:attribute)")
    server_kw = {spec.name: kw.pop(spec.name) for spec in specs(ServerOptions) if spec.cli}
    try:
        server = ServerOptions(**server_kw)
    except ValueError as exc:
        raise click.UsageError(_as_flags(str(exc))) from None
    all_binds = _binds(host, port, unix_path, fd, binds)
    tls = _tls(kw)
    flags = {spec.name: kw[spec.name] for spec in specs(Config) if spec.cli}
    flags["log_level"] = flags["log_level"].lower()
    if flags["reload"] and flags["workers"] > 1:
        raise click.UsageError(
            f"--reload runs one process; it cannot be combined with --workers {flags['workers']}"
        )
    config = Config(handler=handler, binds=all_binds, tls=tls, server=server, **flags)
    sys.exit(run(config, check=check))


def _binds(
    host: str | None,
    port: int | None,
    unix_path: str | None,
    fd: int | None,
    binds: tuple[str, ...],
) -> list[str]:
    """Every place to listen, as bind strings: --host/--port first (the default address
    when nothing is given and systemd passed no socket), then --bind, --unix, --fd."""
    all_binds = [b for text in binds for b in text.replace(",", " ").split()]
    if unix_path:
        all_binds.append(f"unix:{unix_path}")
    if fd is not None:
        all_binds.append(f"fd://{fd}")
    if host is not None or port is not None or (not all_binds and not _activated()):
        h = host or DEFAULT_HOST
        p = DEFAULT_PORT if port is None else port
        all_binds.insert(0, f"[{h}]:{p}" if ":" in h else f"{h}:{p}")
    for text in all_binds:
        try:
            parse_bind(text)
        except BindError as exc:
            raise click.BadParameter(str(exc), param_hint="--bind") from None
    return all_binds


def _tls(kw: dict[str, Any]) -> TLSOptions | None:
    """The TLS flags, checked together; None without --ssl-certfile."""
    if not kw["ssl_certfile"]:
        if kw["ssl_keyfile"] or kw["ssl_ca_certs"]:
            raise click.UsageError("--ssl-keyfile and --ssl-ca-certs need --ssl-certfile")
        return None
    password = kw["ssl_keyfile_password"]
    if kw["ssl_keyfile_password_file"]:
        if password is not None:
            raise click.UsageError(
                "give --ssl-keyfile-password or --ssl-keyfile-password-file, not both"
            )
        with open(kw["ssl_keyfile_password_file"]) as fh:
            password = fh.readline().rstrip("\r\n")
    if kw["ssl_cert_reqs"] != "none" and not kw["ssl_ca_certs"]:
        raise click.UsageError(
            f"--ssl-cert-reqs {kw['ssl_cert_reqs']} needs --ssl-ca-certs to verify clients with"
        )
    return TLSOptions(
        kw["ssl_certfile"],
        kw["ssl_keyfile"],
        password,
        kw["ssl_ca_certs"],
        int(_CERT_REQS[kw["ssl_cert_reqs"]]),
        kw["ssl_ciphers"],
    )


def _name_variables(command: click.Command) -> None:
    """Every flag's variable is ``LOWSERVE_`` and the flag's own name (``--bind`` is
    ``LOWSERVE_BIND``), shown in ``--help``; a list takes spaces or commas."""
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in ("version", "help"):
            continue
        long = next(o for o in param.opts if o.startswith("--"))
        own = "LOWSERVE_" + long[2:].replace("-", "_").upper()
        extra = [v for v in (param.envvar or ()) if v != own] if param.envvar else []
        param.envvar = [own, *extra] if extra else own
        param.show_envvar = True


_name_variables(main)


def _called(name: str, kind: str) -> str:
    """``handler, an async function``; a callable instance reads ``an Endpoint`` once."""
    return kind if kind.endswith(f" {name}") else f"{name}, {kind}"


def _activated() -> bool:
    return os.environ.get("LISTEN_PID") == str(os.getpid()) and bool(os.environ.get("LISTEN_FDS"))


def run(config: Config, *, check: bool = False) -> int:
    """Validate, bind and serve *config*; returns the exit code."""
    try:
        setup_logging(config.log_level, config.log_config, process="main")
    except LogConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        return Exit.USAGE
    if config.tls is not None:
        try:
            config.tls.context()
        except (OSError, ssl.SSLError, ValueError) as exc:
            click.echo(f"Error: {TLSOptions.load_error(exc)}", err=True)
            return Exit.START
    if check:
        # The worker's resolution, in this process (the supervisor never runs user code).
        try:
            found = new_event_loop().run_until_complete(
                load_handler(config.handler, factory=config.factory, app_dir=config.app_dir)
            )
        except LoadError as exc:
            click.echo(f"Error: {exc}", err=True)
            return Exit.USAGE
        name = getattr(found, "__qualname__", None) or type(found).__name__
        kind = "an async function" if inspect.iscoroutinefunction(found) else describe(found)
        click.echo(f"ok: {config.handler} is {_called(name, kind)}")
        return Exit.OK
    if config.reload:
        return _run_reload(config)
    try:
        listeners = open_listeners(
            config.binds,
            tls=config.tls is not None,
            backlog=config.backlog,
            reuse_port=config.reuse_port,
            unix_mode=config.unix_mode,
        )
    except BindError as exc:
        click.echo(f"Error: {exc}", err=True)
        return Exit.START
    admin = None
    if config.metrics is not None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            click.echo(
                "Error: --metrics needs prometheus_client (pip install 'lowserve[metrics]')",
                err=True,
            )
            return Exit.USAGE
        try:
            admin = open_admin(config.metrics)
        except BindError as exc:
            for listener in listeners:
                listener.sock.close()
            click.echo(f"Error: --metrics: {exc}", err=True)
            return Exit.START
    from .supervisor import Supervisor

    # Said once every worker serves: a handler that fails to load is one error line.
    about = f"{config.handler}, {_version_text()}"
    return Supervisor(config, listeners, about=about, admin=admin).run()


def _watched_dirs(config: Config) -> list[str]:
    """--reload-dir, else the app's own package and --app-dir; for ``path/app.py:attr``,
    the file's folder, and --app-dir only when it is not the default ``.``.

    The app's location is found on disk, without importing anything of it.
    """
    if config.reload_dirs:
        return [os.path.abspath(d) for d in config.reload_dirs]
    module = config.handler.rpartition(":")[0]
    by_path = module.endswith(".py") or "/" in module or os.sep in module
    app_dir = config.app_dir or "."
    dirs = [] if by_path and app_dir == "." else [os.path.abspath(app_dir)]
    if by_path:
        dirs.append(os.path.dirname(os.path.abspath(module)))
    else:
        top = module.split(".")[0]
        for base in [config.app_dir or ".", *sys.path]:
            candidate = os.path.join(base or ".", top)
            if os.path.isdir(candidate):
                dirs.append(os.path.abspath(candidate))
                break
            if os.path.isfile(candidate + ".py"):
                dirs.append(os.path.dirname(os.path.abspath(candidate + ".py")))
                break
    unique: list[str] = []
    for d in dirs:  # a directory inside another watched one adds nothing
        if not any(d == u or d.startswith(u + os.sep) for u in unique):
            unique = [u for u in unique if not u.startswith(d + os.sep)] + [d]
    return unique


def _run_reload(config: Config) -> int:
    """Serve in a child process, restarted (gracefully) when a watched file changes.

    The child runs in its own session, so a Ctrl-C reaches this process only, which
    stops the child with one SIGTERM: a graceful stop, not a forced one. SIGINT stops
    it even when it was started with SIGINT ignored, as a background job (``&``,
    nohup) is: Python then leaves it ignored unless told otherwise.
    """
    import fnmatch
    import signal as signals
    import subprocess

    try:
        import watchfiles
    except ImportError:
        click.echo("Error: --reload needs watchfiles (pip install 'lowserve[reload]')", err=True)
        return Exit.USAGE

    def wanted(change: Any, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatch(name, pat) for pat in config.reload_excludes):
            return False
        return any(fnmatch.fnmatch(name, pat) for pat in config.reload_includes)

    argv = [a for a in sys.argv[1:] if a != "--reload"]
    env = {k: v for k, v in os.environ.items() if k != "LOWSERVE_RELOAD"}
    dirs = _watched_dirs(config)
    log.info("watching %s for %s", ", ".join(dirs), " ".join(config.reload_includes))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "lowserve", *argv], env=env, start_new_session=True
        )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (or SIGINT) stops the child as Ctrl-C does

    signals.signal(signals.SIGTERM, interrupt)
    signals.signal(signals.SIGINT, interrupt)
    child = start()
    try:
        for changes in watchfiles.watch(*dirs, watch_filter=wanted, raise_interrupt=True):
            log.info("reloading: %s changed", ", ".join(sorted({p for _, p in changes})))
            child.send_signal(signals.SIGTERM)
            child.wait()
            child = start()
    except KeyboardInterrupt:
        pass
    finally:
        code = _stop_reloaded(child)
    return code


def _stop_reloaded(child: subprocess.Popen[bytes]) -> int:
    """Stop --reload's *child* with one SIGTERM (a graceful stop), wait for it, and
    return its exit code (0 if it had already exited: a failed reload waits for an edit).

    A SIGINT or SIGTERM meanwhile goes on to the child, so a second Ctrl-C forces the
    stop (exit code 1) as it does without --reload, and this process never exits
    before its child.
    """
    import signal as signals

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signals.signal(signals.SIGINT, forward)
    signals.signal(signals.SIGTERM, forward)
    if child.poll() is not None:
        return Exit.OK
    child.send_signal(signals.SIGTERM)
    return child.wait()
