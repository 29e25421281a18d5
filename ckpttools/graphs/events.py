"""Write a TensorBoard event file holding a graph, so ``tensorboard --logdir DIR`` draws it.

An event file is a TFRecord file (``tensorflow/core/lib/io/record_writer.cc``) of serialized ``Event``
protos (``tensorflow/core/util/event.proto``). Each record is::

    uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

The first event carries ``file_version = "brain.Event:2"``; then one event with ``graph_def`` (the
serialized GraphDef) and, for meta graphs and SavedModels, one with ``meta_graph_def``, in that order so
TensorBoard takes the graph from the first and the meta graph (collections, signatures) from the second.
TensorBoard reads files whose name contains ``tfevents``; TensorFlow names them
``events.out.tfevents.<unix time>.<host>``.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from ..errors import OutputError
from ..formats.crc import crc32c, mask
from ..storage.atomic import atomic_path
from .load import LoadedGraph
from .protos import message_class

FILE_VERSION = "brain.Event:2"


def record(data: bytes) -> bytes:
    """Frame ``data`` as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", mask(crc32c(length))) + data + struct.pack("<I", mask(crc32c(data)))


def event_records(graph: LoadedGraph, wall_time: float) -> bytes:
    """The whole event file for ``graph``: version event, graph event, and meta graph event if there is one."""
    Event = message_class("Event")  # noqa: N806 (a message class)
    events = [
        Event(wall_time=wall_time, file_version=FILE_VERSION),
        Event(wall_time=wall_time, graph_def=graph.graph_def.SerializeToString()),
    ]
    if graph.meta_graph is not None:
        events.append(Event(wall_time=wall_time, meta_graph_def=graph.meta_graph.SerializeToString()))
    return b"".join(record(event.SerializeToString()) for event in events)


def event_file_name(wall_time: float, host: str | None = None) -> str:
    """TensorFlow's event file name: ``events.out.tfevents.<unix seconds>.<host>``."""
    return f"events.out.tfevents.{int(wall_time):010d}.{host or socket.gethostname()}"


def write_event_file(graph: LoadedGraph, logdir: str, force: bool = False) -> str:
    """Write ``graph`` as an event file into ``logdir`` (created if needed); return the file's path.

    Example:
        >>> write_event_file(load_graph("model.ckpt-20.meta"), "tb")   # then: tensorboard --logdir tb
        'tb/events.out.tfevents.1717000000.myhost'

    Raises:
        OutputError: ``logdir`` cannot be created, is not a directory or not writable, or the file exists
            without ``force``.
    """
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise OutputError(f"{logdir}: is not a directory")
    try:
        os.makedirs(logdir, exist_ok=True)  # like TensorFlow's own summary writer
    except OSError as exc:
        raise OutputError(f"{logdir}: cannot create the log directory ({exc.strerror})") from None
    wall_time = time.time()
    path = os.path.join(logdir, event_file_name(wall_time))
    data = event_records(graph, wall_time)
    with atomic_path(path, force) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path
