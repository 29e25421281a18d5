"""Training and evaluation with TensorFlow: the only subpackage that imports it.

Importing ``ckpttools.tfcore`` without TensorFlow installed raises ``MissingDependencyError`` with
the install hint. Commands import it inside their callbacks, so ``ckpttools ls`` never pays for it.

Example:
    >>> from ckpttools.training.runconfig import RunConfig
    >>> from ckpttools.tfcore import train, evaluate
    >>> result = train(RunConfig(model="cnn5", steps=300), "runs/cnn5")
    >>> evaluate("runs/cnn5").accuracy
"""

from __future__ import annotations

from .evaluate import ClassAccuracy, EvalResult, evaluate
from .loop import Score, StepInfo, TrainHooks, TrainResult
from .models import MODELS, ModelContext, ModelSpec, get_model, register_model
from .session import graph_session, load_variables, show_tensorflow_logs, tf
from .train import train

__all__ = ["MODELS", "ClassAccuracy", "EvalResult", "ModelContext", "ModelSpec", "Score", "StepInfo",
           "TrainHooks", "TrainResult", "evaluate", "get_model", "graph_session", "load_variables",
           "register_model", "show_tensorflow_logs", "tf", "train"]
