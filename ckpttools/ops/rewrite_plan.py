"""The plan of a rewrite: which source tensor becomes which output tensor, and how.

Operations compose in one pass, in this order (the issue's): select (``scopes``/``exclude``), rename
(``mapping``, transfer's rules), strip the optimizer, promote moving averages (``use_ema``), cast,
average, set the step. The plan is pure metadata: building it reads only indexes, so ``--dry-run``
is instant and every error about the options (a rename collision, an unknown dtype) comes before
anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ..checkpoint import Checkpoint
from ..errors import NotFoundError, PatternError
from ..formats import dtypes, messages, objgraph, objgraph_edit
from ..formats.objgraph import OBJECT_GRAPH_KEY
from ..info import METADATA, OPTIMIZER, SliceInfo, TensorInfo
from ..patterns import Selector
from ..transfer.rename import Renamer

EMA_SUFFIX = "/ExponentialMovingAverage"
FLOAT_DTYPES = frozenset({
    "float16", "float32", "float64", "bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float4_e2m1fn",
})  # fmt: skip
COMPLEX_DTYPES = frozenset({"complex64", "complex128"})


@dataclass(frozen=True)
class RewriteOptions:
    """The operations of one rewrite, as the command's options give them."""

    scopes: Sequence[str] = ()
    exclude: Sequence[str] = ()
    mapping: Sequence[str] = ()
    strip_optimizer: bool = False
    keep_step: bool = False
    use_ema: bool = False
    cast: Sequence[str] = ()  # "FROM=TO"
    set_step: int | None = None


@dataclass
class Entry:
    """One output tensor: where its value comes from and what happens to it on the way.

    Not frozen, though nothing changes it: a frozen dataclass of this size takes six times as long
    to make, and a rename of 20,000 tensors makes 20,000.
    """

    name: str  # the source variable's display name
    key: str  # the source key it is written from (TensorFlow's name)
    out_key: str  # the key in the output
    dtype: str  # the source dtype
    out_dtype: str
    shape: tuple[int, ...]
    role: str
    value_key: str | None = None  # with --use-ema: the shadow whose value replaces the variable's
    average: bool = False
    set_value: int | None = None
    slices: tuple[SliceInfo, ...] = ()
    source_nbytes: int = 0  # the stored size in the source (what strings take)

    @property
    def read_key(self) -> str:
        """The source key the value is read from."""
        return self.value_key or self.key

    @cached_property
    def nbytes(self) -> int:
        """The output's size in bytes (strings: their size in the source); asked for several times per tensor."""
        itemsize = dtypes.from_name(self.out_dtype).itemsize
        if not itemsize:
            return self.source_nbytes
        count = 1
        for dim in self.shape:
            count *= dim
        return count * itemsize

    @property
    def renamed(self) -> bool:
        return self.out_key != self.key

    @property
    def streamed(self) -> bool:
        """True when the stored bytes go through unchanged (no cast, average or new value)."""
        return self.dtype == self.out_dtype and not self.average and self.set_value is None

    @property
    def actions(self) -> list[str]:
        """What happens to this tensor, in words, for the plan table."""
        done = []
        if self.renamed:
            done.append("renamed")
        if self.value_key:
            done.append("moving average")
        if self.average:
            done.append("averaged")
        if self.dtype != self.out_dtype:
            done.append(f"cast {self.dtype}->{self.out_dtype}")
        if self.set_value is not None:
            done.append(f"set to {self.set_value}")
        return done or ["copied"]


@dataclass
class Plan:
    """Every output tensor, every dropped source tensor with its reason, and the plan's notes."""

    source: str
    format: str
    entries: list[Entry] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # source name -> why it is not written
    notes: list[str] = field(default_factory=list)
    averaged: list[str] = field(default_factory=list)  # the checkpoints averaged (newest first)
    object_graph: bytes | None = None  # TF2: the edited object graph, when tensors were dropped

    @property
    def renamed_or_removed(self) -> bool:
        """True when the output's variables no longer match the source's graph (``.meta``)."""
        return bool(self.dropped) or any(entry.renamed for entry in self.entries)

    def to_dict(self) -> dict:
        return {
            "source": self.source, "format": self.format, "averaged": self.averaged,
            "variables": [{
                "name": e.name, "key": e.key, "out_key": e.out_key, "dtype": e.dtype, "out_dtype": e.out_dtype,
                "shape": list(e.shape), "role": e.role, "actions": e.actions, "ema_from": e.value_key,
                "slices": len(e.slices),
            } for e in self.entries],
            "dropped": [{"name": name, "reason": reason} for name, reason in self.dropped.items()],
            "notes": self.notes,
        }  # fmt: skip


def parse_casts(casts: Sequence[str]) -> dict[str, str]:
    """``["float32=bfloat16"]`` -> ``{"float32": "bfloat16"}``; unknown or uncastable dtypes are a usage error."""
    out: dict[str, str] = {}
    for text in casts:
        if "=" not in text:
            raise PatternError(f"--cast '{text}': expected FROM=TO, e.g. float32=bfloat16")
        source, target = (part.strip() for part in text.split("=", 1))
        for name in (source, target):
            try:
                dtype = dtypes.from_name(name)
            except KeyError:
                known = ", ".join(sorted(n for n in _castable()))
                raise PatternError(f"--cast '{text}': unknown dtype '{name}' (known: {known})") from None
            if dtype.storage is None:
                raise PatternError(f"--cast '{text}': {name} tensors cannot be cast")
        if source in out and out[source] != target:
            raise PatternError(f"--cast '{text}': {source} is already cast to {out[source]}")
        out[source] = target
    return out


def _castable() -> list[str]:
    return [name for name in _ALL_DTYPE_NAMES if dtypes.from_name(name).storage is not None]


_ALL_DTYPE_NAMES = tuple(dtypes.from_enum(enum).name for enum in range(1, 34) if enum not in (20, 21))


def build_plan(ckpt: Checkpoint, options: RewriteOptions, averaged: Sequence[str] = ()) -> Plan:
    """The plan for rewriting ``ckpt`` with ``options``; ``averaged`` names the other averaged checkpoints."""
    casts = parse_casts(options.cast)
    plan = Plan(ckpt.prefix, ckpt.format, averaged=[ckpt.prefix, *averaged] if averaged else [])
    infos = list(ckpt)
    tf2 = ckpt.format == "tf2"
    kept = _select(infos, options, plan)
    if options.strip_optimizer:
        kept = _strip(kept, options, plan)
    if options.use_ema:
        kept = _promote_ema(kept, plan, tf2)
    renamer = Renamer(options.mapping)
    if options.mapping and tf2:
        raise PatternError(f"{ckpt.prefix}: --map cannot rename a TF2 object-based checkpoint: its variables are "
                           "found through the object graph, not by name (restore it into the new model and save)")
    step_names = _step_keys(kept) if options.set_step is not None else set()
    if options.set_step is not None and not step_names and tf2:
        raise NotFoundError(f"{ckpt.prefix}: --set-step: the checkpoint has no save_counter or global_step")
    outputs: dict[str, str] = {}
    for info, value_key in kept:
        out_key = info.key if tf2 else renamer(info.name)
        if out_key in outputs:
            raise PatternError(f"--map: '{outputs[out_key]}' and '{info.name}' both map to '{out_key}'")
        outputs[out_key] = info.name
        out_dtype = casts.get(info.dtype, info.dtype)
        set_value = options.set_step if info.key in step_names else None
        average = bool(averaged) and set_value is None and info.dtype in FLOAT_DTYPES | COMPLEX_DTYPES
        plan.entries.append(Entry(info.name, info.key, out_key, info.dtype, out_dtype, info.shape, info.role,
                                  value_key, average, set_value, info.slices, info.nbytes))
    if options.set_step is not None and not step_names:
        if "global_step" in outputs:
            raise PatternError(f"--set-step: '{outputs['global_step']}' is renamed to 'global_step'")
        plan.entries.append(Entry("global_step", "global_step", "global_step", "int64", "int64", (), "training",
                                  set_value=options.set_step))
        plan.notes.append("global_step added (the source has none)")
    if tf2 and plan.dropped:
        _edit_object_graph(ckpt, plan, options.strip_optimizer)
    if not any(entry.role != METADATA for entry in plan.entries):
        hint = ckpt.no_variables_hint()
        why = f"nothing to write{hint}" if hint else "the options leave no variable to write"
        raise NotFoundError(f"{ckpt.prefix}: {why}")
    plan.entries.sort(key=lambda entry: entry.out_key)
    return plan


def _edit_object_graph(ckpt: Checkpoint, plan: Plan, strip_optimizer: bool) -> None:
    """Drop the removed tensors (and with --strip-optimizer, the optimizer's nodes) from the object graph.

    A tensor that only the removed nodes referred to is dropped as well, so graph and keys agree.
    """
    graph = bytes(ckpt.get(OBJECT_GRAPH_KEY).reshape(-1)[0])
    cut: set[int] = set()
    if strip_optimizer:
        cut = objgraph.optimizer_nodes(messages.parse_object_graph(graph))
    written = {entry.key for entry in plan.entries}
    plan.object_graph, referenced = objgraph_edit.prune(graph, written.__contains__, cut)
    kept = []
    for entry in plan.entries:
        if entry.key == OBJECT_GRAPH_KEY or entry.key in referenced:
            kept.append(entry)
        else:
            plan.dropped[entry.name] = "reachable only through removed objects of the object graph"
    plan.entries = kept


def _select(infos: list[TensorInfo], options: RewriteOptions, plan: Plan) -> list[tuple[TensorInfo, str | None]]:
    scopes, exclude = Selector(options.scopes), Selector(options.exclude)
    kept = []
    for info in infos:
        if info.key == OBJECT_GRAPH_KEY:  # rewritten to match what is kept (other metadata is selected by name)
            kept.append((info, None))
        elif options.scopes and not scopes.matches(info.name):
            plan.dropped[info.name] = "not selected by --scopes"
        elif options.exclude and exclude.matches(info.name):
            plan.dropped[info.name] = "excluded by --exclude"
        else:
            kept.append((info, None))
    for pattern in scopes.unmatched(info.name for info in infos) if options.scopes else ():
        plan.notes.append(f"pattern '{pattern}' matched no variable")
    return kept


def _promote_ema(kept: list[tuple[TensorInfo, str | None]], plan: Plan, tf2: bool) -> list:
    """Each variable with a ``.../ExponentialMovingAverage`` shadow takes the shadow's value; shadows go."""
    by_name = {info.name: info for info, _ in kept}
    shadows = {name[: -len(EMA_SUFFIX)]: info for name, info in by_name.items()
               if name.endswith(EMA_SUFFIX) and name[: -len(EMA_SUFFIX)] in by_name}
    if not shadows:
        raise NotFoundError(f"{plan.source}: --use-ema: no ExponentialMovingAverage shadows among the variables")
    if tf2:
        raise PatternError(f"{plan.source}: --use-ema is supported for name-based (TF1) checkpoints only")
    out = []
    for info, value_key in kept:
        shadow = shadows.get(info.name)
        if info.name.endswith(EMA_SUFFIX) and info.name[: -len(EMA_SUFFIX)] in shadows:
            plan.dropped[info.name] = "moving-average shadow, promoted (--use-ema)"
        elif shadow is not None and (shadow.dtype, shadow.shape) != (info.dtype, info.shape):
            raise PatternError(f"{plan.source}: --use-ema: shadow '{shadow.name}' is {shadow.dtype}"
                               f"{list(shadow.shape)} but '{info.name}' is {info.dtype}{list(info.shape)}")
        elif shadow is not None:
            info = _with_slices_of(info, shadow)
            out.append((info, shadow.key))
        else:
            out.append((info, value_key))
    return out


def _with_slices_of(info: TensorInfo, shadow: TensorInfo) -> TensorInfo:
    """The variable's entry takes the shadow's partitioning, since the shadow's parts are what is read."""

    return info._replace(slices=shadow.slices) if shadow.slices != info.slices else info


def _strip(kept: list[tuple[TensorInfo, str | None]], options: RewriteOptions, plan: Plan) -> list:
    out = []
    for info, value_key in kept:
        if info.role == OPTIMIZER:
            plan.dropped[info.name] = "optimizer state (--strip-optimizer)"
        elif _is_global_step(info) and not options.keep_step and options.set_step is None:
            plan.dropped[info.name] = "global_step (--strip-optimizer; --keep-step keeps it)"
        else:
            out.append((info, value_key))
    return out


def _is_global_step(info: TensorInfo) -> bool:
    path = info.key.split("/.ATTRIBUTES/")[0]
    return path.rsplit("/", 1)[-1] == "global_step"


def _step_keys(kept: list[tuple[TensorInfo, str | None]]) -> set[str]:
    """The step counters ``--set-step`` writes: every ``global_step`` and a TF2 ``save_counter``."""
    found = set()
    for info, _ in kept:
        path = info.key.split("/.ATTRIBUTES/")[0]
        if info.shape == () and (_is_global_step(info) or path == "save_counter"):
            found.add(info.key)
    return found


__all__ = ["COMPLEX_DTYPES", "EMA_SUFFIX", "FLOAT_DTYPES", "Entry", "OBJECT_GRAPH_KEY", "Plan", "RewriteOptions",
           "build_plan", "parse_casts"]
