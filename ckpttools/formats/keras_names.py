"""Weight names for Keras 3 ``.weights.h5`` files, which store each layer's variables by number only.

Keras 3 writes a layer's variables as ``<object path>/vars/0``, ``vars/1``... in the order
``layer._trainable_variables + layer._non_trainable_variables`` (``Layer.save_own_variables``), and
the optimizer's as ``optimizer/vars/N`` in ``optimizer.variables`` order: ``iteration``, ``learning_rate``
(absent with a schedule), then per trainable variable its slots (``add_optimizer_variables``).
The names Keras users see (``dense_1/kernel``, ``adam/dense_1_kernel_momentum``) are not in the file;
they follow from the layer class, known here for Keras' built-in layers and optimizers. Anything
else keeps its number (``my_layer/0``): listed and readable, never guessed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

# snake_case class -> (weight names in storage order, optional names, non-trainable names)
_CONV = ("kernel", "bias")
LAYER_WEIGHTS: dict[str, tuple[tuple[str, ...], frozenset[str], frozenset[str]]] = {}
for _cls in ("dense", "einsum_dense", "conv1d", "conv2d", "conv3d", "conv1d_transpose", "conv2d_transpose",
             "conv3d_transpose", "depthwise_conv1d", "depthwise_conv2d"):
    LAYER_WEIGHTS[_cls] = (_CONV, frozenset({"bias"}), frozenset())
for _cls in ("separable_conv1d", "separable_conv2d"):
    LAYER_WEIGHTS[_cls] = (("depthwise_kernel", "pointwise_kernel", "bias"), frozenset({"bias"}), frozenset())
for _cls in ("lstm_cell", "gru_cell", "simple_rnn_cell", "conv_lstm_cell"):
    LAYER_WEIGHTS[_cls] = (("kernel", "recurrent_kernel", "bias"), frozenset({"bias"}), frozenset())
for _cls in ("layer_normalization", "group_normalization"):
    LAYER_WEIGHTS[_cls] = (("gamma", "beta"), frozenset({"gamma", "beta"}), frozenset())
LAYER_WEIGHTS.update({
    "embedding": (("embeddings",), frozenset(), frozenset()),
    "batch_normalization": (("gamma", "beta", "moving_mean", "moving_variance"), frozenset({"gamma", "beta"}),
                            frozenset({"moving_mean", "moving_variance"})),
    "normalization": (("mean", "variance", "count"), frozenset(), frozenset({"mean", "variance", "count"})),
    "p_re_lu": (("alpha",), frozenset(), frozenset()),
    "seed_generator": (("seed_generator_state",), frozenset(), frozenset({"seed_generator_state"})),
    "mean": (("total", "count"), frozenset(), frozenset({"total", "count"})),  # Keras 2 saves metric state
})  # fmt: skip

# Keras 2 (tf_keras) names a depthwise convolution's kernel ``depthwise_kernel``; Keras 3 ``kernel``
KERAS2_WEIGHTS = {cls: (("depthwise_kernel", "bias"), frozenset({"bias"}), frozenset())
                  for cls in ("depthwise_conv1d", "depthwise_conv2d")}

# the config flag that, when false, drops an optional weight
_FLAGS = {"bias": "use_bias", "beta": "center", "gamma": "scale"}

# optimizer class (snake_case) -> slot names per trainable variable, in the order Keras creates them
OPTIMIZER_SLOTS: dict[str, tuple[str, ...]] = {
    "adam": ("momentum", "velocity"), "adamw": ("momentum", "velocity"),
    "lamb": ("momentum", "velocity"), "adamax": ("momentum", "norm"), "adagrad": ("accumulator",),
    "adadelta": ("accumulated_grad", "accumulated_delta_var"), "ftrl": ("accumulator", "linear"),
    "lion": ("momentum",), "sgd": ("momentum",), "rmsprop": ("velocity",),
}  # fmt: skip


# tf_keras (Keras 2.11+ optimizers, written by Keras 2's own .keras saving): class name, slot names
KERAS2_SLOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "adam": ("Adam", ("m", "v")), "adamw": ("AdamW", ("m", "v")), "adamax": ("Adamax", ("m", "u")),
    "sgd": ("SGD", ("m",)),
}  # fmt: skip


# Keras 3 ``LossScaleOptimizer.variables``: its own, then (stored again) those of the optimizer it wraps
LOSS_SCALE_OWN = ("iteration", "learning_rate", "step_counter", "dynamic_scale")


def snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: ``BatchNormalization`` -> ``batch_normalization``, ``PReLU`` -> ``p_re_lu``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def stem(name: str) -> str:
    """A generated name without its counter: ``dense_3`` -> ``dense``."""
    return re.sub(r"_\d+$", "", name)


def _weights(cls: str, keras2: bool) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]] | None:
    return (KERAS2_WEIGHTS.get(cls) if keras2 else None) or LAYER_WEIGHTS.get(cls)


def layer_weight_names(classes: Sequence[str], count: int, config: dict | None = None, keras2: bool = False,
                       ) -> list[str] | None:
    """Names of a layer's ``count`` stored variables, from the first known class among ``classes``; None if unknown.

    With the layer's config, optional weights follow its flags (``use_bias``, ``center``, ``scale``);
    without it, the one way of dropping optional weights that gives ``count`` (None when ambiguous).
    ``keras2``: the file is Keras 2's, which names some weights otherwise.
    """
    for cls in classes:
        known = _weights(cls, keras2)
        if known is not None:
            names, optional, _ = known
            break
    else:
        return None
    if config is not None:
        kept = configured_names(cls, config, keras2)
        return kept if kept is not None and len(kept) == count else None
    fits = []
    for k in range(len(optional) + 1):
        for dropped in itertools.combinations(sorted(optional), k):
            kept = [n for n in names if n not in dropped]
            if len(kept) == count:
                fits.append(kept)
    return fits[0] if len(fits) == 1 else None


def configured_names(cls: str, config: dict, keras2: bool = False) -> list[str] | None:
    """The weights a built-in layer of class ``cls`` (snake_case) has under ``config``; None if not known."""
    known = _weights(cls, keras2)
    if known is None:
        return None
    names, optional, _ = known
    return [n for n in names if not (n in optional and config.get(_FLAGS.get(n, ""), True) is False)]


def is_trainable_weight(classes: Sequence[str], name: str) -> bool:
    """Whether a named layer weight is trainable (moving statistics and seeds are not)."""
    for cls in classes:
        if cls in LAYER_WEIGHTS:
            return name not in LAYER_WEIGHTS[cls][2]
    return True


def loss_scale_names(shapes: Sequence[tuple[int, ...]], wrapped: Sequence[tuple[int, ...]]) -> list[str] | None:
    """Names of a ``LossScaleOptimizer``'s own variables, stored before a copy of the wrapped optimizer's ones.

    ``shapes`` are the outer optimizer's stored variables, ``wrapped`` the inner one's: None unless the
    file holds exactly the four scalars of ``LOSS_SCALE_OWN`` followed by variables shaped as the wrapped ones.
    """
    own = len(LOSS_SCALE_OWN)
    if len(shapes) != own + len(wrapped) or any(s != () for s in shapes[:own]) or list(shapes[own:]) != list(wrapped):
        return None
    return list(LOSS_SCALE_OWN)


def optimizer_names(optimizer: str, prefix: str, shapes: Sequence[tuple[int, ...]],
                    trainable: Sequence[tuple[str, tuple[int, ...], str]], keras2: bool = False,
                    heads_prefix: str | None = None) -> list[tuple[str, str | None]] | None:
    """``(name, slot_of)`` for each stored optimizer variable, or None when the layout is not the known one.

    ``trainable`` is the model's trainable variables (shown name, shape, Keras' own name) in order: a slot
    is named after Keras' name and linked to the shown one. Every slot's shape must
    match its variable's, so a guess that does not fit the file is never shown. Keras 3 names slots
    ``adam/dense_kernel_momentum`` after ``iteration`` and ``learning_rate``; Keras 2 (``keras2``)
    ``Adam/m/dense/kernel`` after ``iteration``. ``heads_prefix`` scopes ``iteration`` and ``learning_rate``
    where it differs from the slots' (an optimizer wrapped by a ``LossScaleOptimizer``: ``adam/iteration``).
    """
    key = snake_case(optimizer).replace("_", "")
    if keras2:
        if key not in KERAS2_SLOTS:
            return None
        display, slots = KERAS2_SLOTS[key]
        heads: tuple[str, ...] = ("iteration",)

        def slot_name(var: str, slot: str) -> str:
            return f"{display}/{slot}/{var}"
    else:
        if key not in OPTIMIZER_SLOTS:
            return None
        slots, heads = OPTIMIZER_SLOTS[key], ("iteration", "learning_rate")

        def slot_name(var: str, slot: str) -> str:
            return f"{prefix}/{var.replace('/', '_')}_{slot}"
    if not trainable or not shapes or shapes[0] != ():
        return None
    head = list(heads[: len(shapes) - len(slots) * len(trainable)])
    if not head or len(shapes) - len(head) != len(slots) * len(trainable) or any(s != () for s in shapes[: len(head)]):
        return None
    out: list[tuple[str, str | None]] = [(name if keras2 else f"{heads_prefix or prefix}/{name}", None)
                                         for name in head]
    position = len(head)
    for shown, var_shape, own in trainable:
        for slot in slots:
            if shapes[position] != var_shape:
                return None
            out.append((slot_name(own, slot), shown))
            position += 1
    return out
