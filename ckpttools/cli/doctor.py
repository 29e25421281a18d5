"""``ckpttools doctor``: why a checkpoint will not restore into a model, and the ``--map`` that fixes it."""

from __future__ import annotations

import shlex
import sys

import click

from ..errors import EXIT_DIFFERENT
from ..ops.doctor import MATCHED, DoctorReport, doctor, write_map
from ..ops.doctor_targets import is_model_name
from .storage_options import storage_option
from .text import print_report, shape_text
from .tfimport import import_tfcore


@click.command(name="doctor")
@click.argument("source")
@storage_option
@click.option("--against", "target", metavar="TARGET",
              help="what SOURCE must restore into: a .meta/GraphDef/SavedModel, a checkpoint, a registered model")
@click.option("--error", "error_log", metavar="LOG", type=click.Path(dir_okay=False),
              help="a file holding TensorFlow's restore error ('Key ... not found', shape mismatches)")
@click.option("--classes", type=click.IntRange(1), default=10, show_default=True,
              help="number of classes when TARGET is a registered model")
@click.option("--write-map", "map_file", metavar="FILE", help="write the suggested rules, one per line (--map-file)")
@click.option("--force", is_flag=True, help="overwrite an existing --write-map FILE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (schema ckpttools.doctor/1).")
def doctor_command(source: str, target: str | None, error_log: str | None, classes: int, map_file: str | None,
                   force: bool, as_json: bool) -> None:
    """Say why SOURCE will not restore into TARGET, and how to make it restore.

    Matches TARGET's variables with SOURCE's: matched, renamed (by the rule
    that explains it), shape-mismatched (both shapes and a likely reason),
    missing; optimizer slots and step counters are ignored. Infers the
    --map rules (scope added/removed/renamed, biases/bias, weights/kernel,
    TF1 names to TF2 object paths, part_N partitions) for `ckpttools transfer`,
    ready to paste, and the --exclude list that lets `transfer --strict` pass.

    \b
    Examples:
      ckpttools doctor old/model.ckpt-20000 --against new/model.ckpt-0
      ckpttools doctor old/model.ckpt-20000 --against graph.meta --write-map fix.map
      ckpttools doctor runs/pretrain --against cnn5 --classes 5
      ckpttools doctor old/model.ckpt-20000 --error restore_error.txt
    \b
    Exit codes: 0 everything TARGET needs is matched (possibly through the
    suggested map), 1 something cannot be matched, 2 usage error, 3 not
    found, 4 bad data, 5 --write-map FILE exists (use --force), 6 TensorFlow
    missing (registered models only), 130 interrupted (Ctrl-C).
    """
    if (target is None) == (error_log is None):
        raise click.UsageError("give exactly one of --against TARGET and --error LOG")
    if target is not None and is_model_name(target):
        import_tfcore()  # TensorFlow, quietly; or exit 6 with the install hint
    report = doctor(source, target, error_log, classes)
    if map_file:
        write_map(report.suggested_map, map_file, force)
    print_report(report, as_json, _print_rich, _print_plain)
    if not report.ok:
        sys.exit(EXIT_DIFFERENT)


def _detail(row) -> str:
    if row.status == MATCHED:
        return row.detail or "same name"
    if row.rules and not row.detail:
        return "by " + ", ".join(row.rules)
    return row.detail or ""


def _print_plain(report: DoctorReport) -> None:
    """Piped: one tab-separated line per target variable (target, status, source, detail), then the summary."""
    for row in report.rows:
        sys.stdout.write("\t".join([row.target, row.status, row.source or "-", _detail(row)]) + "\n")
    for info in report.unused:
        sys.stdout.write("\t".join(["-", "unused", info.name, f"{shape_text(info.shape)} nothing takes it"]) + "\n")
    for line in summary_lines(report):
        sys.stdout.write(line + "\n")


def _print_rich(report: DoctorReport) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    colours = {"matched": "green", "renamed": "cyan", "missing": "red", "unused": "yellow"}
    table = Table(header_style="bold")
    table.add_column("target variable", overflow="fold", ratio=3)
    table.add_column("status", no_wrap=True)
    table.add_column("source", overflow="fold", ratio=2)
    table.add_column("detail", overflow="fold", ratio=3)
    for row in report.rows:
        colour = colours.get(row.status, "red")
        source = "same name" if row.source == row.target else escape(row.source or "")
        table.add_row(escape(row.target), f"[{colour}]{row.status}[/{colour}]", source, escape(_detail(row)))
    for info in report.unused:
        table.add_row("", "[yellow]unused[/yellow]", escape(info.name), f"{shape_text(info.shape)} nothing takes it")
    console.print(table)
    for line in summary_lines(report):
        console.print(escape(line), highlight=False)


def summary_lines(report: DoctorReport) -> list[str]:
    """The notes, the ready-to-paste options, and the verdict."""
    lines = [f"note: {note}" for note in report.notes]
    for source, candidates in report.ambiguous:
        lines.append(f"note: {source} could be any of {', '.join(candidates)}; names cannot decide (not guessed)")
    ignored = {**report.ignored_source}
    if ignored:
        kinds = ", ".join(f"{count} {role}" for role, count in sorted(ignored.items()))
        lines.append(f"note: ignored in the source: {kinds} (optimizer slots, step counters, moving averages)")
    if report.suggested_map:
        lines.append("suggested map: " + " ".join(f"--map {shlex.quote(rule)}" for rule in report.suggested_map))
    if report.suggested_exclude and report.target_kind != "error-log":
        lines.append("for --strict: " + " ".join(f"--exclude {shlex.quote(n)}" for n in report.suggested_exclude))
    counts = {status: len(report.with_status(status)) for status in
              ("matched", "renamed", "shape-mismatch", "dtype-mismatch", "missing")}
    text = ", ".join(f"{n} {status}" for status, n in counts.items()) + f", {len(report.unused)} unused"
    if report.nothing_in_common:
        lines.append(f"{text}: nothing in common: no variable of {report.target} matches one of {report.source}, "
                     "even renamed")
    elif report.ok:
        lines.append(f"{text}: restores" + (" with the suggested map" if report.suggested_map else ""))
    else:
        lines.append(f"{text}: cannot fully restore")
    return lines
