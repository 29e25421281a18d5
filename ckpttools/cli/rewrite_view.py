"""The rewrite plan and result: a rich table on a terminal, tab-separated lines when piped."""

from __future__ import annotations

import sys
from collections import Counter

from ..info import METADATA
from ..ops.rewrite import RewriteReport
from ..ops.rewrite_plan import Entry, Plan
from .text import human_bytes, shape_text


def summary_lines(plan: Plan) -> list[str]:
    """What the plan does, in a few lines: counts by action, dropped by reason, notes."""
    entries = _shown(plan)
    actions = Counter(_short(action) for entry in entries for action in entry.actions)
    done = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
    return [f"plan: {len(entries)} variables ({done})", *_detail_lines(plan)]


def _detail_lines(plan: Plan) -> list[str]:
    """What was averaged, dropped and noted."""
    lines = []
    if plan.averaged:
        lines.append(f"averaging {len(plan.averaged)} checkpoints: {', '.join(plan.averaged)} "
                     "(integer tensors from the first)")
    for reason, count in sorted(Counter(plan.dropped.values()).items()):
        lines.append(f"dropped {count}: {reason}")
    return lines + [f"note: {note}" for note in plan.notes]


def _shown(plan: Plan) -> list[Entry]:
    """The output variables in the order shown (by shown name); the TF2 object graph is not one."""
    return sorted((e for e in plan.entries if e.role != METADATA), key=lambda e: _out_name(plan, e))


def _out_name(plan: Plan, entry: Entry) -> str:
    return entry.name if plan.format == "tf2" else entry.out_key  # TF2: readable object paths, as ls shows


def _short(action: str) -> str:
    """'cast float32->bfloat16' -> 'cast', 'set to 5' -> 'set': the table's dtype column says the rest."""
    return action.split(" ")[0] if action.startswith(("cast", "set")) else action


def print_plan(plan: Plan) -> None:
    """Every output variable with its source, dtype, shape and what happens to it."""
    entries = _shown(plan)
    if not sys.stdout.isatty():
        for e in entries:
            fields = (_out_name(plan, e), e.name, e.out_dtype, shape_text(e.shape), ", ".join(e.actions))
            sys.stdout.write("\t".join(fields) + "\n")
        sys.stderr.write("".join(line + "\n" for line in summary_lines(plan)))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .tables import PathText, Whole

    table = Table(title=f"rewrite {escape(plan.source)} ({plan.format})", title_justify="left", header_style="bold")
    table.add_column("variable (renamed: its source below)" if any(e.renamed for e in entries) else "variable")
    table.add_column("dtype, shape")
    table.add_column("action")
    for e in entries:
        out_name = _out_name(plan, e)
        table.add_row(PathText(out_name, e.name if e.name != out_name else None),
                      Whole(f"{e.out_dtype} {shape_text(e.shape)}"),
                      ", ".join(_short(action) for action in e.actions))
    Console().print(table)
    errors = Console(stderr=True)
    for line in summary_lines(plan):
        errors.print(line, highlight=False, markup=False)


def print_result(report: RewriteReport) -> None:
    """What was not carried over, then the one-line result (all on stderr: stdout stays for data)."""
    lines = _detail_lines(report.plan) + [f"note: {note}" for note in report.notes]
    if report.meta:
        lines.append(f"note: copied the graph to {report.meta}")
    written = sum(entry.role != METADATA for entry in report.plan.entries)  # counted, not sorted: plans get big
    lines.append(f"wrote {written} variables ({human_bytes(report.nbytes)}) to {report.output}")
    sys.stderr.write("".join(line + "\n" for line in lines))
