"""``ckpttools extract``: write checkpoint weights to .npz or .safetensors."""

from __future__ import annotations

import sys

import click

from ..checkpoint import open_checkpoint
from ..ops.extract import FORMATS, ExtractReport, output_format, select, write_weights
from ..storage.url_outputs import check_output
from .progress import byte_progress
from .storage_options import storage_option
from .text import human_bytes, plural, print_json, write_notes

JSON_SCHEMA = "ckpttools.extract/1"


@click.command()
@click.argument("path")
@storage_option
@click.option("--output", "-o", required=True, metavar="FILE", help="Output file (.npz or .safetensors).")
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="Only variables matching PATTERN (repeatable).")
@click.option("--all", "-a", "include_all", is_flag=True, help="Include optimizer slots and training state.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from the file name, .npz or .safetensors).")
@click.option("--compress", is_flag=True, help="Deflate-compress the npz (numpy.savez_compressed).")
@click.option("--force", "-f", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report of what was written (schema in the README).")
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
    \b
    Exit codes: 0 written, 2 bad option or output name (unknown suffix),
    3 checkpoint not found or no variable selected, 4 bad or corrupt data,
    5 output exists (without --force) or cannot be written, 130 Ctrl-C
    (nothing is left behind).
    """
    output_format(output, fmt)  # an unknown suffix or an output that cannot be written fails before any reading
    check_output(output, force)
    with open_checkpoint(path) as ckpt:  # (opened once: the bar's total, then the copy)
        total = sum(info.nbytes for info in select(ckpt, scopes, include_all))
        if ckpt.note and not as_json:
            write_notes([ckpt.note])  # which checkpoint a directory resolved to, before the work starts
        with byte_progress(total, f"writing {output}") as advance:
            report = write_weights(ckpt, output, scopes, include_all, fmt, compress, force, advance)
    if as_json:
        print_json(extract_json(path, report))
        return
    write_notes([f"removed {stale}, left by an interrupted run" for stale in report.removed_partials])
    for name, reason in report.skipped.items():
        sys.stderr.write(f"skipped {name}: {reason}\n")
    write_notes([f"{name}: {change}" for name, change in report.converted.items()])
    sys.stderr.write(f"wrote {plural(len(report.written), 'variable')} ({human_bytes(report.nbytes)}) "
                     f"to {report.path}\n")


def extract_json(path: str, report: ExtractReport) -> dict:
    """The documented ``ckpttools extract --json`` document (schema ``ckpttools.extract/1``)."""
    return {
        "schema": JSON_SCHEMA,
        "checkpoint": {"path": path, "prefix": report.source},
        "output": report.path, "format": report.format, "variables": len(report.written),
        "nbytes": report.nbytes, "written": [info.name for info in report.written],
        "skipped": report.skipped, "converted": report.converted, "removed_partials": report.removed_partials,
    }  # fmt: skip
