"""``python -m lowserve``: the same as the ``lowserve`` command."""

from .cli import main

main(prog_name="lowserve")
