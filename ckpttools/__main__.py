"""``python -m ckpttools`` runs the command line."""

from .cli import main

main(prog_name="ckpttools")
