"""Infer the ``--map`` rules that make a source checkpoint's names line up with a target's.

Candidates come from pairs of one unmatched source and one unmatched target variable with the same
shape and the same leaf up to synonyms (``biases``/``bias``, ``weights``/``kernel``, Keras 3's
``_kernel``...). A pair's names explain it: the differing leaf gives a synonym rule (``weights=kernel``),
the differing scopes a scope rule (``Net/=cnn/``, ``conv1=conv_block1``), an added or dropped prefix an
anchored regex (``re:^=model/``, ``re:^tower_0/=``). Rules are chosen greedily by how many more
variables they match with equal shapes, never breaking a match or sending two sources to one target;
ties that names cannot break are left unmatched (reported, never guessed). Last, any rule whose removal
loses nothing is dropped, so the set is minimal and its order is the order to apply them in.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..transfer.rename import Renamer

_GROUPS = (
    ("kernel", ("kernel", "weights", "weight", "w", "W", "_kernel", "kernel_0")),
    ("bias", ("bias", "biases", "b", "_bias", "bias_0")),
    ("bn", ("bn", "BatchNorm", "batchnorm", "batch_normalization", "batch_norm", "BN")),
    ("gamma", ("gamma", "scale")),
    ("beta", ("beta", "offset")),
    ("embeddings", ("embeddings", "embedding", "emb")),
)
SYNONYMS = {alias: canon for canon, aliases in _GROUPS for alias in aliases}
_CANDIDATES_PER_ROUND = 12
_MAX_PAIRS_PER_BUCKET = 400


@dataclass(frozen=True)
class Named:
    """A variable as rule inference sees it: a name, a shape (None: unknown) and an optional hint.

    ``hint`` is another name for the same variable (a TF2 checkpoint's own variable name, such as
    ``sequential/dense/kernel`` for ``model/_functional/_operations/4/_kernel``): it only breaks ties.
    """

    name: str
    shape: tuple[int, ...] | None = None
    hint: str | None = None


@dataclass
class Inference:
    """The rules, and where each source ends up under them."""

    rules: list[str]
    mapped: dict[str, str]  # source name -> name after the rules
    ambiguous: list[tuple[str, list[str]]]  # source -> equally good targets (left unmatched)


def canon_leaf(component: str) -> str:
    return SYNONYMS.get(component, SYNONYMS.get(component.lstrip("_"), component.lstrip("_").lower()))


def infer_rules(sources: Sequence[Named], targets: Sequence[Named]) -> Inference:
    """Greedy, minimal, ordered rules mapping ``sources`` names onto ``targets`` names."""
    target_by_name = {t.name: t for t in targets}
    rules: list[str] = []
    banned: set[tuple[str, ...]] = set()
    ambiguous: list[tuple[str, list[str]]] = []
    score = _score(sources, target_by_name, rules)
    while True:
        mapped = _apply(sources, rules)
        candidates = _candidates(sources, targets, mapped, target_by_name)
        best: list[tuple[tuple, tuple[str, ...], tuple]] = []
        for bundle, _support in candidates.most_common(_CANDIDATES_PER_ROUND):
            if bundle in banned:
                continue
            trial = rules + [r for r in bundle if r not in rules]
            trial_score = _score(sources, target_by_name, trial)
            if trial_score is None or score is None or trial_score[0] <= score[0] or trial_score[2] < score[2]:
                continue
            similarity = _similarity(sources, target_by_name, rules, trial)
            rank = (trial_score[0], trial_score[1], round(similarity, 6), -len(bundle))
            best.append((rank, bundle, trial_score))
        if not best:
            break
        best.sort(key=lambda item: item[0], reverse=True)
        tied = [bundle for rank, bundle, _ in best if rank == best[0][0]]
        if _conflict(sources, target_by_name, rules, tied):  # names cannot tell them apart: guess nothing
            banned.update(tied)
            ambiguous += _ties(sources, target_by_name, rules, tied)
            continue
        _, bundle, score = best[0]
        rules += [r for r in bundle if r not in rules]
    rules = _tidy(sources, _prune(sources, target_by_name, rules))
    mapped = _apply(sources, rules)
    matched = {name for name in mapped.values() if name in target_by_name}
    ambiguous = [(s, ts) for s, ts in ambiguous if mapped.get(s) not in matched]
    return Inference(rules, mapped, _dedupe(ambiguous))


def _apply(sources: Sequence[Named], rules: list[str]) -> dict[str, str]:
    renamer = Renamer(rules)
    return {s.name: renamer(s.name) for s in sources}


def _score(sources: Sequence[Named], targets: dict[str, Named], rules: list[str]) -> tuple[int, int, int] | None:
    """(matches with equal or unknown shape, matches by name only, total matched); None on a collision."""
    seen: set[str] = set()
    equal = by_name = 0
    renamer = Renamer(rules)
    for source in sources:
        name = renamer(source.name)
        target = targets.get(name)
        if target is None:
            continue
        if name in seen:
            return None
        seen.add(name)
        if target.shape is None or source.shape is None or tuple(target.shape) == tuple(source.shape):
            equal += 1
        else:
            by_name += 1
    return equal, by_name, equal + by_name


def _candidates(sources: Sequence[Named], targets: Sequence[Named], mapped: dict[str, str],
                target_by_name: dict[str, Named]) -> Counter:
    matched = {name for name in mapped.values() if name in target_by_name}
    free_targets = [t for t in targets if t.name not in matched]
    by_leaf: dict[str, list[Named]] = defaultdict(list)
    for target in free_targets:
        by_leaf[canon_leaf(target.name.rsplit("/", 1)[-1])].append(target)
    counts: Counter = Counter()
    pairs: dict[tuple, int] = defaultdict(int)
    for source in sources:
        name = mapped[source.name]
        if name in target_by_name:
            continue
        leaf = canon_leaf(name.rsplit("/", 1)[-1])
        for target in by_leaf.get(leaf, ()):
            if target.shape is not None and source.shape is not None and tuple(target.shape) != tuple(source.shape):
                continue
            key = (leaf, target.shape)
            if pairs[key] >= _MAX_PAIRS_PER_BUCKET:
                break
            pairs[key] += 1
            for bundle in pair_rules(name, target.name):
                counts[bundle] += 1
    return counts


def pair_rules(source: str, target: str) -> list[tuple[str, ...]]:
    """Rule bundles that turn the name ``source`` into ``target``: the whole differing scope as one rule,
    and split after its first component (``Net/=cnn/`` then ``conv1=conv_block1/conv``), which may
    carry over to variables whose shapes differ (a changed head keeps its renamed scope)."""
    a, b = source.split("/"), target.split("/")
    leaf = (f"{a[-1]}={b[-1]}",) if a[-1] != b[-1] else ()
    k = 1
    while k < len(a) and k < len(b) and a[-1 - k] == b[-1 - k]:
        k += 1
    x, y = a[:-k], b[:-k]
    common = 0
    while common < len(x) and common < len(y) and x[common] == y[common]:
        common += 1
    lead, x, y = x[:common], x[common:], y[common:]
    if not x and not y:
        return [leaf] if leaf else []
    bundles = [(_scope_rule(lead, x, y),) + leaf]
    if x and y and len(x) + len(y) > 2:
        head = _scope_rule(lead, x[:1], y[:1])
        rest_x, rest_y = x[1:], y[1:]
        if rest_x or rest_y:
            bundles.append((head, _scope_rule(lead + y[:1], rest_x, rest_y)) + leaf)
    return bundles


def _scope_rule(lead: list[str], x: list[str], y: list[str]) -> str:
    old, new = "/".join(x), "/".join(y)
    if x and y:
        return f"{old}/={new}/" if not lead else f"{old}={new}"
    head = "/".join(lead)
    if not x:  # target has extra scopes: insert them
        return f"re:^{re.escape(head + '/') if head else ''}={head + '/' if head else ''}{new}/"
    return f"re:^{re.escape(head + '/' if head else '')}{re.escape(old)}/={head + '/' if head else ''}"


def _similarity(sources: Sequence[Named], targets: dict[str, Named], before: list[str], after: list[str]) -> float:
    """How alike the newly matched pairs' original names are (the tie-breaker)."""
    hints = {s.name: s.hint or s.name for s in sources}
    gained = _gained(sources, targets, _apply(sources, before), after)
    return sum(difflib.SequenceMatcher(None, hints[s], name).ratio() for s, name in gained.items())


def _gained(sources: Sequence[Named], targets: dict[str, Named], before: dict[str, str],
            rules: list[str]) -> dict[str, str]:
    after = _apply(sources, rules)
    return {s: name for s, name in after.items() if name in targets and before[s] not in targets}


def _conflict(sources: Sequence[Named], targets: dict[str, Named], rules: list[str],
              bundles: list[tuple[str, ...]]) -> bool:
    """Do equally good bundles send one source to different targets, or different sources to one target?"""
    if len(bundles) < 2:
        return False
    before = _apply(sources, rules)
    chosen: dict[str, str] = {}
    reached: dict[str, str] = {}
    for bundle in bundles:
        for source, target in _gained(sources, targets, before, rules + list(bundle)).items():
            if chosen.setdefault(source, target) != target or reached.setdefault(target, source) != source:
                return True
    return False


def _ties(sources: Sequence[Named], targets: dict[str, Named], rules: list[str],
          bundles: list[tuple[str, ...]]) -> list[tuple[str, list[str]]]:
    options: dict[str, list[str]] = defaultdict(list)
    before = _apply(sources, rules)
    for bundle in bundles:
        for source, name in _gained(sources, targets, before, rules + list(bundle)).items():
            if name not in options[source]:
                options[source].append(name)
    return [(source, names) for source, names in options.items() if len(names) > 1]


def _prune(sources: Sequence[Named], targets: dict[str, Named], rules: list[str]) -> list[str]:
    best = _score(sources, targets, rules)
    for rule in list(reversed(rules)):
        trial = [r for r in rules if r != rule]
        if _score(sources, targets, trial) == best:
            rules = trial
    return rules


def _tidy(sources: Sequence[Named], rules: list[str]) -> list[str]:
    """Scope rules first, then single-name ones (``biases=bias``), when that order maps every name the same."""
    ordered = sorted(rules, key=lambda rule: 0 if "/" in rule or rule.startswith("re:") else 1)
    return ordered if _apply(sources, ordered) == _apply(sources, rules) else rules


def _dedupe(items: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    seen, out = set(), []
    for source, names in items:
        if source not in seen:
            seen.add(source)
            out.append((source, names))
    return out
