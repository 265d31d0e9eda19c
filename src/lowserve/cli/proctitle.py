"""Process titles in ``ps`` and ``top``, as gunicorn shows them, with ``setproctitle``
installed (``lowserve[proctitle]``): ``lowserve supervisor [mod:handler]`` and
``lowserve worker N [mod:handler]``, N being the worker's number (the ``worker`` label
of ``--metrics``). Without it, titles stay the interpreter's command line."""

from __future__ import annotations

__all__ = ["set_title"]


def set_title(title: str) -> None:
    """Show *title* for this process, where setproctitle is installed."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(title)
