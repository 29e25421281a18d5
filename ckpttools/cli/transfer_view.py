"""The transfer plan as a rich table (terminal) or tab-separated lines (piped), on stdout."""

from __future__ import annotations

import sys

from ..info import MODEL
from ..transfer.plan import NEW, RESTORED, Plan, PlanEntry
from .text import plural, shape_text

_STYLE = {RESTORED: "green", NEW: "cyan"}
_NOT_TRAINABLE = " (not trainable)"


def print_plan(plan: Plan) -> None:
    """Model variables with their status, then unmatched sources; optimizer/bookkeeping targets summarised."""
    shown = [entry for entry in plan.entries if entry.target.role == MODEL or entry.status == RESTORED]
    hidden = len(plan.entries) - len(shown)
    rows = [(_target(e), e.status, e.source.name if e.source else "", _detail(e)) for e in shown]
    rows += [(u.mapped_name, "unmatched", u.source.name,
              "no such variable in the model" + (f"; did you mean {u.suggestion}?" if u.suggestion else ""))
             for u in plan.unmatched]
    statuses = [entry.status for entry in shown]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in (RESTORED, NEW, "skipped-shape", "skipped-dtype"))
    summary = f"plan: {counts}, {plural(len(plan.unmatched), 'unmatched source variable')}"
    if hidden:
        summary += f" ({plural(hidden, 'optimizer/bookkeeping variable')} start fresh, not shown)"
    if not sys.stdout.isatty():
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
        sys.stderr.write(summary + "\n")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"transfer from {escape(plan.source)}", title_justify="left", header_style="bold")
    for column in ("target variable", "status", "source", "detail"):
        table.add_column(column, overflow="fold")
    for target, status, source, detail in rows:
        style = _STYLE.get(status, "yellow")
        same = source == target.removesuffix(_NOT_TRAINABLE)
        shown_source = "[dim]same name[/dim]" if same else escape(source)  # a narrower table on a terminal
        table.add_row(escape(target), f"[{style}]{status}[/{style}]", shown_source, escape(detail))
    console = Console()
    console.print(table)
    console.print(summary, highlight=False, markup=False)


def _target(entry: PlanEntry) -> str:
    return entry.target.name + ("" if entry.target.trainable else _NOT_TRAINABLE)


def _detail(entry: PlanEntry) -> str:
    if entry.reason:
        return entry.reason
    return f"{entry.target.dtype} {shape_text(entry.target.shape)}"
