"""Write ``tf0_12_mlp.meta``: a MetaGraphDef laid out as TensorFlow 0.12 exported it (text format).

TensorFlow 0.12 cannot be installed on current Pythons, so this file is written by hand in that
version's layout: ``Variable`` ops (not ``VariableV2``) with ref-typed outputs, ``_class`` colocation
attributes, a V1 saver (``SaveSlices``/``RestoreSlice``), ``versions.producer = 21`` and the deprecated
``GraphDef.version`` field, and ``trainable_variables`` as serialized ``VariableDef`` bytes.

    python tests/data/graphs/make_tf0_12_mlp.py   # rewrites tests/data/graphs/tf0_12_mlp.meta
"""

from pathlib import Path

from google.protobuf import text_format
from tensorboard.compat.proto import meta_graph_pb2, types_pb2, variable_pb2

HERE = Path(__file__).resolve().parent


def _node(graph, name, op, inputs=(), **attrs):
    node = graph.node.add(name=name, op=op, input=list(inputs))
    for key, value in attrs.items():
        if key in ("dtype", "T", "dt"):
            node.attr[key].type = value
        elif key == "shape":
            for size in value:
                node.attr[key].shape.dim.add(size=size)
        elif key == "colocate":
            node.attr["_class"].list.s.append(b"loc:@" + value.encode())
        elif isinstance(value, bool):
            node.attr[key].b = value
        elif isinstance(value, bytes):
            node.attr[key].s = value
        elif key == "value":
            node.attr[key].tensor.dtype = types_pb2.DT_FLOAT
            for size in value:
                node.attr[key].tensor.tensor_shape.dim.add(size=size)
            node.attr[key].tensor.float_val.append(0.0)
    return node


def _variable(graph, name, shape):
    f = types_pb2.DT_FLOAT
    _node(graph, f"{name}/initial_value", "Const", dtype=f, value=shape)
    _node(graph, name, "Variable", shape=shape, dtype=f, container=b"", shared_name=b"")
    _node(graph, f"{name}/Assign", "Assign", [name, f"{name}/initial_value"], T=f, colocate=name,
          use_locking=True, validate_shape=True)
    _node(graph, f"{name}/read", "Identity", [name], T=f, colocate=name)


def build() -> meta_graph_pb2.MetaGraphDef:
    meta = meta_graph_pb2.MetaGraphDef()
    info = meta.meta_info_def
    info.meta_graph_version = "v0.12.0"
    info.tensorflow_version = "0.12.1"
    info.tensorflow_git_version = "v0.12.0-10-g4d924e7-dirty"
    graph = meta.graph_def
    f = types_pb2.DT_FLOAT
    _node(graph, "x", "Placeholder", dtype=f, shape=[-1, 784])
    _variable(graph, "hidden/weights", [784, 32])
    _variable(graph, "hidden/biases", [32])
    _node(graph, "hidden/MatMul", "MatMul", ["x", "hidden/weights/read"], T=f, transpose_a=False, transpose_b=False)
    _node(graph, "hidden/add", "Add", ["hidden/MatMul", "hidden/biases/read"], T=f)
    _node(graph, "hidden/Relu", "Relu", ["hidden/add"], T=f)
    _variable(graph, "softmax/weights", [32, 10])
    _variable(graph, "softmax/biases", [10])
    _node(graph, "softmax/MatMul", "MatMul", ["hidden/Relu", "softmax/weights/read"], T=f, transpose_a=False,
          transpose_b=False)
    _node(graph, "softmax/add", "Add", ["softmax/MatMul", "softmax/biases/read"], T=f)
    _node(graph, "y", "Softmax", ["softmax/add"], T=f)
    names = ["hidden/weights", "hidden/biases", "softmax/weights", "softmax/biases"]
    _node(graph, "init", "NoOp", [f"^{n}/Assign" for n in names])
    _node(graph, "save/Const", "Const", dtype=types_pb2.DT_STRING)
    _node(graph, "save/save/tensor_names", "Const", dtype=types_pb2.DT_STRING)
    _node(graph, "save/save/shapes_and_slices", "Const", dtype=types_pb2.DT_STRING)
    _node(graph, "save/save", "SaveSlices",
          ["save/Const", "save/save/tensor_names", "save/save/shapes_and_slices", *names])
    _node(graph, "save/control_dependency", "Identity", ["save/Const", "^save/save"], T=types_pb2.DT_STRING)
    for i, name in enumerate(names):
        suffix = f"_{i}" if i else ""
        _node(graph, f"save/restore_slice{suffix}", "RestoreSlice", ["save/Const"], dt=f)
        _node(graph, f"save/Assign{suffix}", "Assign", [name, f"save/restore_slice{suffix}"], T=f, colocate=name)
    _node(graph, "save/restore_all", "NoOp", [f"^save/Assign{'_' + str(i) if i else ''}" for i in range(4)])
    graph.versions.producer = 21
    graph.version = 21  # the deprecated field, still written by 0.x
    saver = meta.saver_def
    saver.filename_tensor_name = "save/Const:0"
    saver.save_tensor_name = "save/control_dependency:0"
    saver.restore_op_name = "save/restore_all"
    saver.max_to_keep = 5
    saver.keep_checkpoint_every_n_hours = 10000.0
    saver.version = 0  # LEGACY/V1
    for collection in ("trainable_variables", "variables"):
        items = meta.collection_def[collection].bytes_list.value
        for name in names:
            items.append(variable_pb2.VariableDef(variable_name=f"{name}:0", initializer_name=f"{name}/Assign",
                                                  snapshot_name=f"{name}/read:0").SerializeToString())
    return meta


if __name__ == "__main__":
    (HERE / "tf0_12_mlp.meta").write_text(text_format.MessageToString(build()))
