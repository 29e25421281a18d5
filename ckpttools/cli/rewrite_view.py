"""The rewrite plan and result: a rich table on a terminal, tab-separated lines when piped."""

from __future__ import annotations

import sys
from collections import Counter

from ..info import METADATA
from ..ops.rewrite import RewriteReport
from ..ops.rewrite_plan import Plan
from .render import human_bytes, shape_text


def summary_lines(plan: Plan) -> list[str]:
    """What the plan does, in a few lines: counts by action, dropped by reason, notes."""
    entries = [entry for entry in plan.entries if entry.role != METADATA]
    actions = Counter(action.split(" ")[0] for entry in entries for action in entry.actions)
    done = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
    lines = [f"plan: {len(entries)} variables ({done})"]
    if plan.averaged:
        lines.append(f"averaging {len(plan.averaged)} checkpoints: {', '.join(plan.averaged)} "
                     "(integer tensors from the first)")
    for reason, count in sorted(Counter(plan.dropped.values()).items()):
        lines.append(f"dropped {count}: {reason}")
    return lines + [f"note: {note}" for note in plan.notes]


def print_plan(plan: Plan) -> None:
    """Every output variable with its source, dtype, shape and what happens to it."""
    rows = [(e.out_key if plan.format != "tf2" else e.name, e.name, e.out_dtype, shape_text(e.shape),
             ", ".join(e.actions)) for e in plan.entries if e.role != METADATA]
    if not sys.stdout.isatty():
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        sys.stderr.write("".join(line + "\n" for line in summary_lines(plan)))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"rewrite {escape(plan.source)} ({plan.format})", title_justify="left", header_style="bold")
    for column in ("variable", "from", "dtype", "shape", "action"):
        table.add_column(column, overflow="fold")
    for out_name, source, dtype, shape, action in rows:
        shown = "[dim]same name[/dim]" if source == out_name else escape(source)
        table.add_row(escape(out_name), shown, dtype, shape, action)
    Console().print(table)
    errors = Console(stderr=True)
    for line in summary_lines(plan):
        errors.print(line, highlight=False, markup=False)


def print_result(report: RewriteReport) -> None:
    """The one-line result (stderr), and what was not carried over."""
    entries = [entry for entry in report.plan.entries if entry.role != METADATA]
    lines = summary_lines(report.plan)[1:] + [f"note: {note}" for note in report.notes]
    if report.meta:
        lines.append(f"note: copied the graph to {report.meta}")
    lines.append(f"wrote {len(entries)} variables ({human_bytes(report.nbytes)}) to {report.output}")
    sys.stderr.write("".join(line + "\n" for line in lines))
