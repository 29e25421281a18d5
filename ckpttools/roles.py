"""Why a variable is in a checkpoint, from its name alone (TF1 names, TF2 keys and paths).

The first rule that matches wins; TF2 keys are read without their `/.ATTRIBUTES/...` suffix.

- METADATA: `_CHECKPOINTABLE_OBJECT_GRAPH`, the TF2 object graph; a TF2 key ending in
  `/.ATTRIBUTES/OBJECT_CONFIG_JSON`, a layer's config that Keras of TF 2.0-2.2 saved as text.
- OPTIMIZER:
  - a TF1 slot, whose last component is an optimizer's name with an optional `_N`
    (`cnn/conv/kernel/Adam_1`, `emb/part_0/Momentum`; names in `OPTIMIZER_NAMES`);
  - `beta1_power`, `beta2_power` (optionally `_N`) at any depth;
  - a TF2 slot (a `.OPTIMIZER_SLOT` component) or anything under a top-level `optimizer/`;
  - anything under a top-level optimizer scope or `training/<optimizer>/` (Keras in graph mode:
    `Adam/iterations`, `training/Adam/dense/kernel/m`), or under an `OptimizeLoss/` scope.
  Lower-case slot names (`m`, `v`, `accumulator`, `momentum`) count only inside those scopes: on
  their own they are too often real model variables. Keras 3 names those scopes in lower case
  (`adam/dense_kernel_momentum`); they count too.
  - optimizer hyper-parameter variables: a last component `learning_rate` (optionally `_N`) at any
    depth, and the top-level `iteration`/`iterations` of Keras optimizers (TF2 SavedModel graphs).
- TRAINING: a `global_step` component at any depth; a last component `save_counter`; the
  top-level name `step` only (the `tf.train.Checkpoint(step=...)` idiom; deeper `step`s may be
  model state); a component `ExponentialMovingAverage` (or `_N`), i.e. moving-average shadows; the
  zero-debias state `<var>/local_step` and `moving_mean/biased`, `moving_variance/biased`;
  `examples_seen`, the data position ckpttools' training saves for `--resume`; Keras metric
  accumulators (`keras_api/metrics/0/count`, TF1 Keras `metrics/acc/total`).
- MODEL: everything else, including batch-norm `moving_mean`/`moving_variance`, which inference needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

from .info import METADATA, MODEL, OPTIMIZER, TRAINING

OPTIMIZER_NAMES = (
    "Adam", "AdamW", "Adamax", "AdaMax", "LazyAdam", "Nadam", "Momentum", "RMSProp",
    "Adagrad", "AdagradDA", "ProximalAdagrad", "Adadelta", "Ftrl", "LARS", "LARSOptimizer",
    "LAMB", "Adafactor", "Yogi", "AddSign", "PowerSign", "SGD", "GradientDescent",
)  # fmt: skip
_OPTIMIZER = "(?:" + "|".join(OPTIMIZER_NAMES) + r")(?:_\d+)?"

_TF2_ATTRIBUTES = re.compile(r"/\.ATTRIBUTES/.*\Z", re.DOTALL)
_OBJECT_CONFIG = "/.ATTRIBUTES/OBJECT_CONFIG_JSON"  # the one attribute the rules read before it is cut off
_TF1_SLOT = rf"(?P<variable>.+)/(?P<slot>{_OPTIMIZER})"

_RULES: tuple[tuple[str, str], ...] = (  # (regex, role); compiled on first use: most listings never need them
    (r"^_CHECKPOINTABLE_OBJECT_GRAPH$", METADATA),
    (rf"^.+/{_OPTIMIZER}$", OPTIMIZER),
    (r"(?:^|/)beta[12]_power(?:_\d+)?$", OPTIMIZER),
    (r"(?:^|/)\.OPTIMIZER_SLOT(?:/|$)", OPTIMIZER),
    (r"^optimizer(?:/|$)", OPTIMIZER),
    (rf"^(?:training/)?(?i:{_OPTIMIZER})/", OPTIMIZER),
    (r"(?:^|/)learning_rate(?:_\d+)?$", OPTIMIZER),
    (r"^iterations?(?:_\d+)?$", OPTIMIZER),
    (r"(?:^|/)OptimizeLoss/", OPTIMIZER),
    (r"(?:^|/)global_step(?:/|$)", TRAINING),
    (r"(?:^|/)save_counter$", TRAINING),
    (r"^step$", TRAINING),
    (r"(?:^|/)ExponentialMovingAverage(?:_\d+)?(?:/|$)", TRAINING),
    (r"(?:^|/)local_step$", TRAINING),
    (r"(?:^|/)moving_(?:mean|variance)/biased$", TRAINING),
    (r"(?:^|/)keras_api/metrics/", TRAINING),  # Keras 2 metric state: total, count, true_positives...
    (r"^metrics/[^/]+/(?:total|count)(?:_\d+)?$", TRAINING),
    (r"(?:^|/)examples_seen$", TRAINING),  # ckpttools' own data position, saved for --resume
)


# Every rule above needs one of these words in one component of the name (a new rule must add its word here;
# tests/test_roles_prefilter.py checks it on every name the tests know). No word holds a `/`, so a name can match
# a rule only if one of its components holds a word: the case-insensitive word search runs once per distinct
# component (cached), and a checkpoint's 20,000 names are built from a few hundred components.
_RULE_WORDS = ("_CHECKPOINTABLE_OBJECT_GRAPH", "OBJECT_CONFIG_JSON", *OPTIMIZER_NAMES, "_power", ".OPTIMIZER_SLOT",
               "optimizer", "OptimizeLoss", "step", "save_counter", "ExponentialMovingAverage", "biased",
               "examples_seen", "learning_rate", "iteration", "metrics")
_ANY_RULE = re.compile("|".join(re.escape(word) for word in sorted(set(_RULE_WORDS), key=len, reverse=True)),
                       re.IGNORECASE)


@lru_cache(maxsize=1 << 16)
def _has_rule_word(component: str) -> bool:
    return _ANY_RULE.search(component) is not None


def _path(name: str) -> str:
    """The name as the rules read it: a TF2 key without its ``/.ATTRIBUTES/...`` suffix."""
    return _TF2_ATTRIBUTES.sub("", name) if "/.ATTRIBUTES/" in name else name


@cache
def _compiled_rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(regex), role) for regex, role in _RULES)


@cache
def _compiled_slot() -> re.Pattern[str]:
    return re.compile(_TF1_SLOT)


def _first_rule(path: str) -> str:
    return next((role for regex, role in _compiled_rules() if regex.search(path)), MODEL)


def classify_by_every_rule(name: str) -> str:
    """``classify`` without the word prefilter: the reference the prefilter must agree with."""
    return METADATA if name.endswith(_OBJECT_CONFIG) else _first_rule(_path(name))


def classify(name: str) -> str:
    """The role (MODEL, OPTIMIZER, TRAINING or METADATA) a variable plays, judged by its name.

    Example:
        >>> classify("cnn/conv/kernel/Adam_1"), classify("global_step"), classify("cnn/conv/kernel")
        ('optimizer', 'training', 'model')
    """
    if name.endswith(_OBJECT_CONFIG):
        return METADATA
    path = _path(name)
    return _first_rule(path) if any(map(_has_rule_word, path.split("/"))) else MODEL


def classify_all(names: Sequence[str]) -> list[str]:
    """``classify`` of each name, for a whole checkpoint at once: the word prefilter runs once per distinct
    component of all the names (a few hundred for 20,000 names), so a name without any rule word costs a
    set lookup, not a search."""
    hot = set(filter(_has_rule_word, set("/".join(names).split("/"))))
    if not hot:
        return [MODEL] * len(names)
    cold = hot.isdisjoint
    return [MODEL if cold(name.split("/")) else classify(name) for name in names]


def slot_target(name: str) -> tuple[str, str] | None:
    """For a TF1 optimizer slot, ``(variable_name, slot_name)``; None for anything else.

    Example:
        >>> slot_target("cnn/conv/kernel/Adam_1")
        ('cnn/conv/kernel', 'Adam_1')
    """
    found = _compiled_slot().fullmatch(name)
    return (found["variable"], found["slot"]) if found else None
