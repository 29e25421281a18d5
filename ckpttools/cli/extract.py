"""``ckpttools extract``: write checkpoint weights to .npz or .safetensors."""

from __future__ import annotations

import click
from rich.console import Console
from rich.filesize import decimal as human_bytes
from rich.markup import escape

from ..checkpoint import open_checkpoint
from ..ops.extract import FORMATS, select, write_weights
from .progress import byte_progress
from .render import print_json
from .storage_options import storage_option


@click.command()
@click.argument("path")
@storage_option
@click.option("--output", "-o", required=True, metavar="FILE", help="Output file (.npz or .safetensors).")
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="Only variables matching PATTERN (repeatable).")
@click.option("--all", "-a", "include_all", is_flag=True, help="Include optimizer slots and training state.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from the file name; npz otherwise).")
@click.option("--compress", is_flag=True, help="Deflate-compress the npz (numpy.savez_compressed).")
@click.option("--force", "-f", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report of what was written.")
def extract(path: str, output: str, scopes: tuple[str, ...], include_all: bool, fmt: str | None,
            compress: bool, force: bool, as_json: bool) -> None:
    """Write the selected variables of a checkpoint to an .npz or .safetensors file.

    Keys are the variable names (cnn/conv_block1/conv/kernel). Tensors are
    streamed one at a time; the file appears only when complete.

    \b
    Examples:
      ckpttools extract runs/cnn -o weights.npz
      ckpttools extract model.ckpt-20000 -o convs.npz --scopes 'conv_block[1-3]' --compress
      ckpttools extract runs/cnn -o weights.safetensors     # bfloat16 kept as bfloat16
    \b
    Load them with numpy.load("weights.npz", allow_pickle=False) or
    safetensors.numpy.load_file("weights.safetensors").
    """
    with open_checkpoint(path) as ckpt:
        total = sum(info.nbytes for info in select(ckpt, scopes, include_all))
    with byte_progress(total, f"writing {output}") as advance:
        report = write_weights(path, output, scopes, include_all, fmt, compress, force, advance)
    if as_json:
        print_json({
            "output": report.path, "format": report.format, "variables": len(report.written),
            "nbytes": report.nbytes, "written": [info.name for info in report.written],
            "skipped": report.skipped, "converted": report.converted,
        })
        return
    errors = Console(stderr=True)
    for name, reason in report.skipped.items():
        errors.print(f"[yellow]skipped[/yellow] {escape(name)}: {escape(reason)}", highlight=False)
    for name, change in report.converted.items():
        errors.print(f"[dim]note:[/dim] {escape(name)}: {escape(change)}", highlight=False)
    errors.print(f"wrote {len(report.written)} variables ({human_bytes(report.nbytes)}) to {escape(report.path)}",
                 highlight=False)
