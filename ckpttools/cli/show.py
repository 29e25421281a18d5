"""``ckpttools show``: print tensors' values, as numpy prints them, or as JSON."""

from __future__ import annotations

import shutil
import sys

import click

from ..checkpoint import open_checkpoint
from ..ops.show import DEFAULT_PRECISION, format_value, read_values, select_tensors, show_json
from .storage_options import storage_option
from .text import shape_text


@click.command()
@click.argument("path")
@storage_option
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN",
              help="Also every variable matching PATTERN (repeatable; see README 'Selecting variables').")
@click.option("--all", "-a", "include_all", is_flag=True, help="Let --scopes match optimizer slots and training state.")
@click.option("--full", is_flag=True, help="Print every value (default: numpy's summary beyond 1000 values).")
@click.option("--precision", "-p", type=click.IntRange(min=0), default=DEFAULT_PRECISION, show_default=True,
              help="Digits after the decimal point for floats.")
@click.option("--json", "as_json", is_flag=True, help="Values as nested lists (schema ckpttools.show/1, README).")
def show(path: str, names: tuple[str, ...], scopes: tuple[str, ...], include_all: bool, full: bool,
         precision: int, as_json: bool) -> None:
    """Print the values of tensors in a checkpoint: name, dtype, shape, then the values.

    NAME is a variable name as `ckpttools ls` shows it (or TensorFlow's key);
    a mistyped name gets the closest one. Values print as numpy prints them:
    big tensors are summarised with '...' (--full prints all). Works on V2,
    V1, TF2, SavedModel, .npz and .safetensors files.

    \b
    Example:
      ckpttools show sample_checkpoints/tf1_cnn cnn/logits/bias
      ckpttools show runs/cnn --scopes 'conv_block1/bn' --precision 3
      ckpttools show runs/cnn cnn/dense/kernel --full > kernel.txt
      ckpttools show runs/cnn cnn/output/bias --json | jq '.tensors[0].values'
    \b
    Exit codes: 0 ok, 2 usage error, 3 no such checkpoint or variable, or
    a pattern matches nothing, 4 bad or corrupt data, 130 interrupted.
    """
    with open_checkpoint(path) as ckpt:
        if not as_json:  # which checkpoint was chosen matters most when a name is not in it
            for note in ([ckpt.note] if ckpt.note else []) + ckpt.warnings:
                sys.stderr.write(f"note: {note}\n")
        infos = select_tensors(ckpt, names, scopes, include_all)
        if as_json:
            for piece in show_json(path, ckpt, infos):
                sys.stdout.write(piece)
            return
        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if terminal else 75
        for number, (info, value) in enumerate(read_values(ckpt, infos)):
            if number:
                sys.stdout.write("\n")
            header = [info.name, info.dtype, shape_text(info.shape)]
            sys.stdout.write(("  " if terminal else "\t").join(header) + "\n")
            sys.stdout.write(format_value(value, precision, full, width) + "\n")
