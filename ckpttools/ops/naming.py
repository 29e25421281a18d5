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

from ..transfer.rename import Rule, compile_rule, tidy

_GROUPS = (
    ("kernel", ("kernel", "weights", "weight", "w", "W", "_kernel", "kernel_0")),
    ("bias", ("bias", "biases", "b", "_bias", "bias_0")),
    ("bn", ("bn", "BatchNorm", "batchnorm", "batch_normalization", "batch_norm", "BN")),
    ("gamma", ("gamma", "scale")),
    ("beta", ("beta", "offset")),
    ("embeddings", ("embeddings", "embedding", "emb")),
)
SYNONYMS = {alias: canon for canon, aliases in _GROUPS for alias in aliases}
_CANDIDATES_PER_ROUND = 64
_MAX_PAIRS_PER_BUCKET = 400
_PRUNE_LIMIT = 24  # rules; beyond this each rule was needed when chosen and pruning costs too much


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


@dataclass
class _Trial:
    bundle: tuple[str, ...]
    changed: dict[str, str]  # source -> its new name
    gained: dict[str, str]  # source -> the target it newly reaches
    rank: tuple[int, int, int]


def canon_leaf(component: str) -> str:
    return SYNONYMS.get(component, SYNONYMS.get(component.lstrip("_"), component.lstrip("_").lower()))


def infer_rules(sources: Sequence[Named], targets: Sequence[Named]) -> Inference:
    """Greedy, minimal, ordered rules mapping ``sources`` names onto ``targets`` names."""
    state = _State(sources, targets)
    banned: set[tuple[str, ...]] = set()
    ambiguous: list[tuple[str, list[str]]] = []
    while True:
        candidates = _candidates(sources, targets, state.mapped, state.targets)
        trials = _trials(state, candidates, banned)
        if not trials:
            break
        trials.sort(key=lambda trial: trial.rank, reverse=True)
        if not _accept_round(state, trials, banned, ambiguous):
            break
    rules = _tidy(sources, _prune(sources, state.targets, state.rules))
    mapped = _apply(sources, rules)
    matched = {name for name in mapped.values() if name in state.targets}
    ambiguous = [(s, ts) for s, ts in ambiguous if mapped.get(s) not in matched]
    return Inference(rules, mapped, _dedupe(ambiguous))


def _trials(state: _State, candidates: Counter, banned: set) -> list[_Trial]:
    """Evaluate the best-supported bundles; stop early once support falls far below the best gain so far."""
    trials: list[_Trial] = []
    best = 0
    for bundle, support in candidates.most_common(_CANDIDATES_PER_ROUND):
        if len(trials) >= 8 and support * 4 < best:
            break
        if bundle in banned:
            continue
        trial = state.evaluate(bundle)
        if trial is not None:
            trials.append(trial)
            best = max(best, trial.rank[0])
    return trials


class _State:
    """The rules so far and where they send each source; trials are evaluated incrementally."""

    def __init__(self, sources: Sequence[Named], targets: Sequence[Named]) -> None:
        self.sources = {s.name: s for s in sources}
        self.targets = {t.name: t for t in targets}
        self.mapped = {s.name: s.name for s in sources}
        self.owner = {name: name for name in self.mapped if name in self.targets}
        self.rules: list[str] = []
        self.blocked: set[str] = set()  # sources whose candidates names cannot separate

    def status(self, source: str, name: str) -> int:
        """2: matches a target of equal (or unknown) shape, 1: matches by name only, 0: no target."""
        target = self.targets.get(name)
        if target is None:
            return 0
        shape = self.sources[source].shape
        return 2 if target.shape is None or shape is None or tuple(target.shape) == tuple(shape) else 1

    def evaluate(self, bundle: tuple[str, ...]) -> _Trial | None:
        """The trial of appending ``bundle``; None when it gains no equal-shape match, loses one or collides."""
        changed = {}
        for source, name in self.mapped.items():
            new = apply_rules(name, bundle)
            if new != name:
                changed[source] = new
        equal = by_name = 0
        reached: dict[str, str] = {}
        for source, new in changed.items():
            before, after = self.status(source, self.mapped[source]), self.status(source, new)
            equal += (after == 2) - (before == 2)
            by_name += (after == 1) - (before == 1)
            if after:
                holder = self.owner.get(new)
                if new in reached or (holder is not None and holder not in changed):
                    return None  # two sources would restore into one target
                reached[new] = source
        if equal <= 0 or equal + by_name < 0:
            return None
        gained = {s: new for s, new in changed.items() if new in self.targets and self.mapped[s] not in self.targets}
        if self.blocked & set(gained):
            return None
        return _Trial(bundle, changed, gained, (equal, by_name, -len(bundle)))

    def accept(self, trial: _Trial) -> None:
        self.rules += [rule for rule in trial.bundle if rule not in self.rules]
        for source, new in trial.changed.items():
            old = self.mapped[source]
            if self.owner.get(old) == source:
                del self.owner[old]
            self.mapped[source] = new
        for source, new in trial.changed.items():
            if new in self.targets:
                self.owner[new] = source


def _accept_round(state: _State, trials: list[_Trial], banned: set, ambiguous: list) -> bool:
    """Accept the best trials that do not compete; equal rivals names cannot separate are banned, not guessed."""
    taken_sources: set[str] = set()
    taken_targets: set[str] = set()
    progress = False
    banned_before = len(banned)
    for trial in trials:
        if set(trial.gained) & taken_sources or set(trial.gained.values()) & taken_targets:
            continue
        rivals = [other for other in trials if other is not trial and other.rank[:2] == trial.rank[:2]
                  and _compete(trial, other)]
        if rivals:
            scores = {id(t): _similarity(state, t) for t in [trial, *rivals]}
            best = max(scores.values())
            if scores[id(trial)] < best:
                continue  # a rival explains it better; it is taken in its turn
            tied = [t for t in rivals if scores[id(t)] == best]
            if tied:  # every source these rivals fight over stays unmatched, in any later round too
                fought = {s for t in [trial, *rivals] for s in t.gained}
                ambiguous += _ties([t for t in trials if fought & set(t.gained)])
                state.blocked |= fought
                banned.update(t.bundle for t in [trial, *rivals])
                taken_sources |= state.blocked
                continue
        fresh = state.evaluate(trial.bundle) if progress else trial  # earlier acceptances may have changed it
        if fresh is None:
            continue
        state.accept(fresh)
        taken_sources |= set(fresh.gained)
        taken_targets |= set(fresh.gained.values())
        progress = True
    return progress or len(banned) > banned_before


def _compete(a: _Trial, b: _Trial) -> bool:
    """Do two trials send one source to different targets, or different sources to one target?"""
    if any(b.gained.get(s, t) != t for s, t in a.gained.items()):
        return True
    reached = {t: s for s, t in a.gained.items()}
    return any(reached.get(t, s) != s for s, t in b.gained.items())


def _similarity(state: _State, trial: _Trial) -> float:
    """How alike the newly matched pairs' original names are (the tie-breaker)."""
    total = 0.0
    for source, name in trial.gained.items():
        hint = state.sources[source].hint or source
        total += difflib.SequenceMatcher(None, hint, name).ratio()
    return round(total, 6)


def _ties(trials: list[_Trial]) -> list[tuple[str, list[str]]]:
    options: dict[str, list[str]] = defaultdict(list)
    for trial in trials:
        for source, name in trial.gained.items():
            if name not in options[source]:
                options[source].append(name)
    return [(source, names) for source, names in options.items() if len(names) > 1]


_COMPILED: dict[str, tuple[Rule, str | None]] = {}


def apply_rules(name: str, rules: Sequence[str]) -> str:
    """``Renamer(rules)(name)``, skipping a scope rule at once when its scope is not in the name (fast)."""
    renamed = name
    for text in rules:
        compiled = _COMPILED.get(text)
        if compiled is None:
            rule = compile_rule(text)
            needle = None if text.startswith("re:") else text.split("=", 1)[0].strip("/")
            compiled = _COMPILED[text] = (rule, needle)
        rule, needle = compiled
        if needle is None or needle in renamed:
            renamed = rule.apply(renamed)
    return tidy(name, renamed)


def _apply(sources: Sequence[Named], rules: list[str]) -> dict[str, str]:
    return {s.name: apply_rules(s.name, rules) for s in sources}


def _score(sources: Sequence[Named], targets: dict[str, Named], rules: list[str]) -> tuple[int, int, int] | None:
    """(matches with equal or unknown shape, matches by name only, total matched); None on a collision."""
    seen: set[str] = set()
    equal = by_name = 0
    for source in sources:
        name = apply_rules(source.name, rules)
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
    """Rule bundles from pairs (unmatched source, unmatched target) of one leaf and shape, with their support."""
    matched = {name for name in mapped.values() if name in target_by_name}
    buckets: dict[tuple, list[Named]] = defaultdict(list)  # (leaf, shape or None) -> free targets
    any_shape: dict[str, list[Named]] = defaultdict(list)  # leaf -> free targets (for sources of unknown shape)
    for target in targets:
        if target.name not in matched:
            leaf = canon_leaf(target.name.rsplit("/", 1)[-1])
            buckets[leaf, None if target.shape is None else tuple(target.shape)].append(target)
            any_shape[leaf].append(target)
    counts: Counter = Counter()
    pairs: dict[tuple, int] = defaultdict(int)
    for source in sources:
        name = mapped[source.name]
        if name in target_by_name:
            continue
        leaf = canon_leaf(name.rsplit("/", 1)[-1])
        if source.shape is None:
            found = any_shape.get(leaf, [])
        else:
            found = buckets.get((leaf, tuple(source.shape)), []) + buckets.get((leaf, None), [])
        key = (leaf, source.shape)
        for target in found:
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


def _prune(sources: Sequence[Named], targets: dict[str, Named], rules: list[str]) -> list[str]:
    if len(rules) > _PRUNE_LIMIT:
        return list(rules)
    rules = list(rules)
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
