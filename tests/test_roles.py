"""Roles from names: optimizer and training state must be recognised without hiding model variables."""

from __future__ import annotations

import pytest

from ckpttools import roles
from ckpttools.info import METADATA, MODEL, OPTIMIZER, TRAINING
from ckpttools.roles import classify, classify_all, classify_by_every_rule, slot_target

TF1_SLOT_NAMES = [
    "cnn/conv_block1/conv/kernel/Adam",
    "cnn/conv_block1/conv/kernel/Adam_1",
    "cnn/conv_block1/conv/kernel/Adam_2",  # a second optimizer on the same variable
    "cnn/dense/kernel/Momentum",
    "cnn/dense/kernel/RMSProp",
    "cnn/dense/kernel/RMSProp_1",
    "embedding/Adagrad",
    "embedding/part_0/Adagrad",
    "embedding/part_3/Ftrl_1",
    "w/Adadelta",
    "w/Adadelta_1",
    "w/Ftrl",
    "w/ProximalAdagrad",
    "w/AdagradDA",
    "w/AdagradDA_1",
    "w/Nadam",
    "w/Nadam_1",
    "w/Adamax",
    "w/Adamax_1",
    "w/AdamW",
    "w/AdamW_1",
    "w/LazyAdam",
    "w/LazyAdam_1",
    "w/LARS",
    "bert/encoder/layer_11/attention/self/query/kernel/Adafactor",
]

OPTIMIZER_NAMES = [
    *TF1_SLOT_NAMES,
    "beta1_power",
    "beta2_power",
    "beta1_power_1",
    "tower_0/beta2_power",
    "OptimizeLoss/learning_rate",
    "train/OptimizeLoss/beta1_power",
    "model/OptimizeLoss/dense/kernel/m",
    # TF2 object-based keys and their readable paths
    "optimizer/iter",
    "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE",
    "optimizer/learning_rate",
    "optimizer/_momentums/0",
    "optimizer/_variables/3",
    "optimizer",
    "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
    "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/v",
    # Keras optimizers in graph mode
    "Adam/iterations",
    "Adam/lr",
    "Adam/beta_1",
    "SGD/momentum",
    "training/Adam/dense/kernel/m",
    "training/Adam/Variable_1",
    "training/RMSProp_1/Variable",
]

TRAINING_NAMES = [
    "global_step",
    "global_step/.ATTRIBUTES/VARIABLE_VALUE",
    "model/global_step",
    "save_counter",
    "save_counter/.ATTRIBUTES/VARIABLE_VALUE",
    "nested_checkpoint/save_counter",
    "step",
    "step/.ATTRIBUTES/VARIABLE_VALUE",
    "cnn/dense/kernel/ExponentialMovingAverage",
    "cnn/conv_block1/bn/moving_mean/ExponentialMovingAverage",
    "cnn/dense/kernel/ExponentialMovingAverage_1",
    "cnn/dense/kernel/ExponentialMovingAverage/biased",
    "cnn/conv_block1/bn/moving_mean/biased",
    "cnn/conv_block1/bn/moving_variance/local_step",
]

MODEL_NAMES = [
    "cnn/conv_block1/conv/kernel",
    "cnn/conv_block1/conv/bias",
    "cnn/conv_block1/bn/gamma",
    "cnn/conv_block1/bn/beta",
    "cnn/conv_block1/bn/moving_mean",  # needed for inference
    "cnn/conv_block1/bn/moving_variance",
    "embedding/part_0",
    "embedding/part_1",
    "rnn/lstm_cell/kernel",
    "dense/kernel",
    "dense_1/bias",
    "model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE",
    "model/_functional/_operations/1/_kernel",
    "bert/embeddings/LayerNorm/beta",
    # look-alikes that must stay model variables
    "Adam",  # a top-level name, not a slot under a variable
    "cnn/adam/kernel",
    "cnn/kernel/adam",  # slot names are case-sensitive
    "cnn/kernel/Adamx",
    "cnn/Adam_head/kernel",
    "cnn/kernel/Adam_v",
    "cnn/Momentum_net/w",
    "layer/accumulator",  # lower-case slot words alone are not enough
    "layer/momentum",
    "layer/m",
    "layer/v",
    "rms/rms",
    "beta1_power_net/w",
    "model/beta1/power",
    "model/optimizer_head/kernel",
    "optimizer_net/kernel",
    "model/optimizer/kernel",  # only a top-level optimizer scope counts
    "training/dense/kernel",
    "encoder/training/Adam_scale",
    "my_global_step",
    "global_steps",
    "model/step",  # 'step' counts only as the whole name
    "step/kernel",
    "step_size",
    "steps",
    "save_counter_offset",
    "moving_average/kernel",
    "ExponentialMovingAverageLayer/w",
    "cnn/dense/bias/biased",
    "cnn/local_step_embedding",
    "OptimizeLoss",
]


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_optimizer_state(name: str) -> None:
    assert classify(name) == OPTIMIZER


@pytest.mark.parametrize("name", TRAINING_NAMES)
def test_training_state(name: str) -> None:
    assert classify(name) == TRAINING


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_variables(name: str) -> None:
    assert classify(name) == MODEL


def test_object_graph_is_metadata() -> None:
    assert classify("_CHECKPOINTABLE_OBJECT_GRAPH") == METADATA
    assert classify("model/_CHECKPOINTABLE_OBJECT_GRAPH") == MODEL


def test_keras_layer_config_text_is_metadata_by_its_raw_key() -> None:
    """When the object graph cannot be read the raw keys are classified: a layer's OBJECT_CONFIG_JSON is no weight."""
    for key in ("/.ATTRIBUTES/OBJECT_CONFIG_JSON", "layer-0/.ATTRIBUTES/OBJECT_CONFIG_JSON"):
        assert classify(key) == classify_by_every_rule(key) == METADATA
    assert classify_all(["layer_with_weights-0/.ATTRIBUTES/OBJECT_CONFIG_JSON", "dense/kernel"]) == [METADATA, MODEL]
    assert classify("layer-0/OBJECT_CONFIG_JSON/.ATTRIBUTES/VARIABLE_VALUE") == MODEL  # a variable of that name


def test_roles_are_the_info_constants() -> None:
    assert {classify(n) for n in ("a/b", "a/b/Adam", "global_step", "_CHECKPOINTABLE_OBJECT_GRAPH")} == {
        MODEL,
        OPTIMIZER,
        TRAINING,
        METADATA,
    }


@pytest.mark.parametrize(
    "name, target",
    [
        ("cnn/conv/kernel/Adam_1", ("cnn/conv/kernel", "Adam_1")),
        ("cnn/conv/kernel/Adam", ("cnn/conv/kernel", "Adam")),
        ("cnn/dense/bias/Momentum", ("cnn/dense/bias", "Momentum")),
        ("embedding/part_0/Adagrad", ("embedding/part_0", "Adagrad")),
        ("w/RMSProp_1", ("w", "RMSProp_1")),
        ("w/Ftrl_12", ("w", "Ftrl_12")),
        ("scope/w/LazyAdam_1", ("scope/w", "LazyAdam_1")),
    ],
)
def test_slot_target_of_tf1_slots(name: str, target: tuple[str, str]) -> None:
    assert slot_target(name) == target


@pytest.mark.parametrize(
    "name",
    [
        "cnn/conv/kernel",
        "Adam",
        "beta1_power",
        "global_step",
        "cnn/kernel/adam",
        "cnn/kernel/Adam_v",
        "cnn/kernel/Adam/ExponentialMovingAverage",
        "model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
        "optimizer/iter",
    ],
)
def test_slot_target_is_none_for_everything_else(name: str) -> None:
    assert slot_target(name) is None


@pytest.mark.parametrize("name", TF1_SLOT_NAMES)
def test_every_tf1_slot_has_a_target_and_is_optimizer_state(name: str) -> None:
    target = slot_target(name)
    assert target is not None
    variable, slot = target
    assert f"{variable}/{slot}" == name
    assert slot.split("_")[0] in roles.OPTIMIZER_NAMES


def test_first_matching_rule_wins() -> None:
    # An optimizer's own step counter is optimizer state; a shadow of anything is a moving average.
    assert classify("optimizer/global_step") == OPTIMIZER
    assert classify("cnn/kernel/Adam/ExponentialMovingAverage") == TRAINING
