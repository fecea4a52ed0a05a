"""``python -m akida``: the command line of :mod:`akida.cli`."""

from .cli import main

main(prog_name="akida")
