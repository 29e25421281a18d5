"""The one door to TensorFlow, and the one home for graph, session and seed setup.

Every module in ``tfcore`` imports ``tf`` from here, so a missing TensorFlow becomes one
``MissingDependencyError`` with the install hint, and every graph is built the same way: a fresh
``tf.Graph`` with the run's seed, run by a ``tf.compat.v1.Session``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import ConfigError, MissingDependencyError

try:
    import tensorflow as tf
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingDependencyError(
        f"training and evaluation need TensorFlow ({exc}); install it with: pip install 'ckpttools[tf]'"
    ) from None

__all__ = ["graph_session", "load_variables", "quiet_tf_logs", "show_tensorflow_logs", "tf", "versions"]

_SHOW_LOGS = [False]  # ckpttools --debug: let TensorFlow's Python warnings through


def show_tensorflow_logs(show: bool = True) -> None:
    """Let TensorFlow's own warnings (deprecations...) reach stderr inside ``quiet_tf_logs`` blocks, or not."""
    _SHOW_LOGS[0] = show


@contextmanager
def quiet_tf_logs() -> Iterator[None]:
    """TensorFlow's Python logger at ERROR while the block runs (its deprecation notices are for us, not
    for users), unless ``show_tensorflow_logs()``."""
    if _SHOW_LOGS[0]:
        yield
        return
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def graph_session(seed: int) -> Iterator[tuple[Any, Any]]:
    """Yield ``(graph, session)``: a new graph seeded with ``seed`` (as default) and a session on it.

    Build ops inside the ``with`` block; the session is closed on exit. The graph-level seed makes
    every initializer deterministic, so the same seed gives the same starting weights.
    """
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        session = tf.compat.v1.Session(graph=graph)
        try:
            yield graph, session
        finally:
            session.close()


def load_variables(session: Any, values: Mapping[str, Any]) -> list[str]:
    """Set the graph's variables named in ``values`` (``{"cnn/dense/kernel": array}``); returns their names.

    Works on a finalized graph (it feeds each variable's initializer), so a ``TrainHooks.warm_start``
    can use it. Names not in the graph are ignored; a shape that differs is a ConfigError.
    """
    loaded = []
    for variable in session.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
        name = variable.op.name
        if name not in values:
            continue
        value = np.asarray(values[name])
        if value.shape != tuple(variable.shape.as_list()):
            raise ConfigError(f"cannot load {name}: the value has shape {list(value.shape)}, the variable "
                              f"{variable.shape.as_list()}")
        session.run(variable.initializer, {variable.initializer.inputs[1]: value})
        loaded.append(name)
    return loaded


def versions() -> dict[str, str]:
    """Library versions recorded in a run's ``run.json``."""
    return {"tensorflow": tf.__version__, "numpy": np.__version__}
