"""``ckpttools verify``: is a checkpoint intact? One line per problem and a verdict; exit 0 intact, 4 not."""

from __future__ import annotations

import sys

import click

from ..errors import EXIT_BAD_DATA
from ..ops.problems import CheckpointReport, Problem, VerifyReport
from ..ops.verify import verify
from .progress import byte_progress
from .storage_options import storage_option
from .text import human_bytes, print_report


@click.command(name="verify")
@click.argument("path")
@storage_option
@click.option("--quick", is_flag=True, help="Structure and sizes only; do not read values to check their crc32c.")
@click.option("--all", "all_checkpoints", is_flag=True,
              help="In a directory: every checkpoint its 'checkpoint' state file lists, not only the latest.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Threads reading data shards (default: up to 4).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (schema ckpttools.verify/1).")
def verify_command(path: str, quick: bool, all_checkpoints: bool, workers: int | None, as_json: bool) -> None:
    """Check that a checkpoint is intact, without TensorFlow, and say what is wrong.

    Checks the index (footer, block checksums, every entry), that every data
    shard exists and is long enough, and the crc32c of every tensor (V2; V1
    block checksums; npz CRC-32; safetensors has none). Names the usual causes:
    a Git LFS pointer or a web page instead of the file, a truncated shard (and
    the variables lost), index and data from different saves, a data file given
    as the prefix, V1 and V2 files mixed up, a state file naming missing files.

    \b
    Examples:
      ckpttools verify runs/cnn/model.ckpt-2000
      ckpttools verify runs/cnn --all --quick
      ckpttools verify model.ckpt-20000 --json | jq '.checkpoints[].problems'
    \b
    Exit codes: 0 intact, 4 not intact (or not a checkpoint), 2 usage error,
    3 nothing at PATH, 130 interrupted (Ctrl-C).
    """
    report = verify(path, quick=quick, all_checkpoints=all_checkpoints, workers=workers, progress=byte_progress)
    print_report(report, as_json, _print_rich, _print_plain)
    if not report.intact:
        sys.exit(EXIT_BAD_DATA)


def _problem_cells(problem: Problem) -> list[str]:
    return [problem.severity, problem.file, problem.variable or "-", problem.what, problem.fix or "-"]


def _print_plain(report: VerifyReport) -> None:
    """Piped: one tab-separated line per problem (severity, file, variable, what, fix), then the verdicts."""
    for problem in report.all_problems():
        sys.stdout.write("\t".join(_problem_cells(problem)) + "\n")
    for line in _verdicts(report):
        sys.stdout.write(line + "\n")


def _print_rich(report: VerifyReport) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    found = report.all_problems()
    if found:
        table = Table(header_style="bold", show_lines=False)
        table.add_column("file / variable", overflow="fold", ratio=2)
        table.add_column("problem", overflow="fold", ratio=3)
        table.add_column("what to do", overflow="fold", ratio=2)
        colours = {"error": "red", "warning": "yellow", "note": "dim"}
        for problem in found:
            where = escape(problem.file) + (f"\n[bold]{escape(problem.variable)}[/bold]" if problem.variable else "")
            colour = colours.get(problem.severity, "red")
            table.add_row(where, f"[{colour}]{problem.severity}:[/{colour}] {escape(problem.what)}",
                          escape(problem.fix))
        console.print(table)
    for line in _verdicts(report):
        console.print(escape(line), highlight=False, style="bold")


def _verdicts(report: VerifyReport) -> list[str]:
    lines = [_verdict(c, report.quick) for c in report.checkpoints]
    if len(report.checkpoints) != 1 or any(p.severity == "error" for p in report.problems):
        bad = sum(1 for c in report.checkpoints if not c.intact)
        state = "intact" if report.intact else "NOT intact"
        errors = sum(1 for p in report.problems if p.severity == "error")
        state_file = f", {_plural(errors, 'state file error')}" if errors else ""
        count = _plural(len(report.checkpoints), "checkpoint")
        lines.append(f"{report.path}: {state} ({count}, {bad} with errors{state_file})")
    return lines


def _verdict(checkpoint: CheckpointReport, quick: bool) -> str:
    errors = sum(1 for p in checkpoint.problems if p.severity == "error")
    name = checkpoint.prefix or checkpoint.path
    if errors:
        return f"{name}: NOT intact ({_plural(errors, 'problem')})"
    if checkpoint.checksums:
        return f"{name}: intact ({checkpoint.tensors} tensors, {human_bytes(checkpoint.nbytes)} checksummed)"
    why = "--quick: values not checksummed" if quick else "the format stores no checksums"
    return f"{name}: intact ({checkpoint.tensors} tensors; structure and sizes checked, {why})"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
