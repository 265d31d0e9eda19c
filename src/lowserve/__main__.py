"""``python -m lowserve``: the same as the ``lowserve`` command."""

from .cli.command import main

main(prog_name="lowserve")
