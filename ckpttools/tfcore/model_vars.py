"""The variables a registered model creates, for ``ckpttools doctor SOURCE --against MODEL``.

The model is built (for 28x28x1 images, the built-in data sets' shape) in a scratch graph, exactly as
training builds it, and its global variables are read back; nothing is run or initialised.
"""

from __future__ import annotations

from ..transfer.plan import TargetVariable
from .models import ModelContext, build_logits, get_model
from .session import graph_session, tf
from .warm_start import target_variables

INPUT_SHAPE = (28, 28, 1)


def registered_model_variables(name: str, num_classes: int = 10) -> list[TargetVariable]:
    """Names, shapes and dtypes of model ``name``'s variables with ``num_classes`` outputs."""
    spec = get_model(name)
    with graph_session(0) as (graph, _):
        images = tf.compat.v1.placeholder(tf.float32, (None, *INPUT_SHAPE), name="images")
        build_logits(spec, images, ModelContext(num_classes))
        targets, _ = target_variables(graph)
    return targets
