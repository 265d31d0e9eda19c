"""The ``lowserve`` command and its process model.

Nothing else in lowserve imports this package: the library (``Server``, runners,
``web``) works without click, and a worker (:mod:`lowserve.cli.worker`) imports
no click either. ``main`` is the console script's entry point, loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["main"]


def main(*args: Any, **kwargs: Any) -> Any:
    """Run the ``lowserve`` command (see :mod:`lowserve.cli.command`)."""
    from .command import main as command_main

    return command_main(*args, **kwargs)
