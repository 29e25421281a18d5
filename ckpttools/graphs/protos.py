"""TensorFlow's graph messages (GraphDef, MetaGraphDef, Event...) with nothing but ``protobuf`` installed.

The message definitions come from ``tensorflow_protos.pb`` beside this module: a serialized
``FileDescriptorSet`` of TensorFlow's ``graph.proto``, ``meta_graph.proto``, ``event.proto`` and their
imports (Apache-2.0, as compiled into the ``tensorboard`` package's ``tensorboard.compat.proto``, hence the
``tensorboard.`` package prefix of the names). They are loaded into a private descriptor pool, so they never
clash with TensorFlow's or tensorboard's own copies in the same process. This keeps the base install free of
tensorboard and what it pulls in (grpcio, werkzeug, pillow, markdown...).

Regenerate the file (when TensorFlow adds fields we want) with ``python -m ckpttools.graphs.protos``, which
needs tensorboard; tests/test_graph_protos.py checks the shipped file against an installed tensorboard.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

DESCRIPTOR_FILE = Path(__file__).with_name("tensorflow_protos.pb")
PACKAGE = "tensorboard"
SOURCES = ("graph_pb2", "meta_graph_pb2", "event_pb2", "saver_pb2", "variable_pb2")  # tensorboard.compat.proto


@cache
def _pool():  # -> descriptor_pool.DescriptorPool
    from google.protobuf import descriptor_pb2, descriptor_pool

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_FILE.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:  # dependencies come first in the file
        pool.Add(proto)
    return pool


@cache
def message_class(name: str) -> type:
    """The message class for a TensorFlow message name, e.g. ``"GraphDef"`` or ``"SaverDef"``."""
    from google.protobuf import message_factory

    descriptor = _pool().FindMessageTypeByName(f"{PACKAGE}.{name}")
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:
        return get(descriptor)
    return message_factory.MessageFactory(_pool()).GetPrototype(descriptor)  # protobuf < 4.21


def file_descriptor_set() -> bytes:
    """What ``tensorflow_protos.pb`` should hold, built from the installed tensorboard's compiled protos."""
    import importlib

    from google.protobuf import descriptor_pb2

    ordered: dict[str, object] = {}

    def add(descriptor) -> None:
        if descriptor.name in ordered:
            return
        for dependency in descriptor.dependencies:
            add(dependency)
        ordered[descriptor.name] = descriptor

    for module in SOURCES:
        add(importlib.import_module(f"tensorboard.compat.proto.{module}").DESCRIPTOR)
    files = descriptor_pb2.FileDescriptorSet()
    for descriptor in ordered.values():
        files.file.add().MergeFromString(descriptor.serialized_pb)
    files.file.append(_saved_model_file(ordered["tensorboard/compat/proto/meta_graph.proto"].name))
    return files.SerializeToString(deterministic=True)


def _saved_model_file(meta_graph_file: str):  # -> descriptor_pb2.FileDescriptorProto
    """``SavedModel`` (``core/protobuf/saved_model.proto``): two fields, and in no package we could import."""
    from google.protobuf import descriptor_pb2

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="ckpttools/graphs/saved_model.proto", package=PACKAGE,
                                               syntax="proto3", dependency=[meta_graph_file])
    message = proto.message_type.add(name="SavedModel")
    message.field.add(name="saved_model_schema_version", number=1, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    message.field.add(name="meta_graphs", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                      type_name=f".{PACKAGE}.MetaGraphDef")
    return proto


def main() -> int:
    DESCRIPTOR_FILE.write_bytes(file_descriptor_set())
    print(f"wrote {DESCRIPTOR_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
