"""Transfer into any TF1 graph: import the user's ``.meta``, initialise it, warm-start it, save it.

The graph is imported as it was exported (devices cleared), its own initialisers give
every variable its fresh value, ``warm_start`` assigns the planned source values, and
the graph's own Saver (or a new one when the meta graph has none) saves OUT and OUT.meta.
TensorFlow saves into a temporary directory beside OUT; the files are moved into place
only when all are complete (index last), then the directory's ``checkpoint`` file names OUT.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from ..errors import CorruptFileError, NotFoundError, OutputError, TransferError
from ..formats.state_file import update_state_file
from ..resolve import resolve
from ..storage import sources
from ..storage.outputs import check_output_prefix, same_checkpoint
from ..transfer.into import output_prefix
from ..transfer.plan import Plan
from .session import tf
from .warm_start import warm_start


@dataclass
class GraphResult:
    """What ``transfer_graph`` wrote."""

    plan: Plan
    prefix: str
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "files": self.paths, "restored": len(self.plan.restored)}


def transfer_graph(source: str, meta: str, out: str, *, scopes: Sequence[str] = (), exclude: Sequence[str] = (),
                   mapping: Sequence[str] = (), with_optimizer_state: bool = False, on_missing: str = "warn",
                   on_shape_mismatch: str = "skip", on_dtype_mismatch: str = "skip", force: bool = False,
                   dry_run: bool = False, on_plan: Callable[[Plan], None] | None = None) -> GraphResult:
    """Save ``out`` (+ ``out.meta``): the graph of ``meta`` initialised, with the planned variables from ``source``.

    Example:
        >>> result = transfer_graph("runs/pretrain", "new/model.meta", "warm/model.ckpt",
        ...                         scopes=["conv_block*"])
    """
    prefix = output_prefix(out)
    if same_checkpoint(prefix, resolve(source).prefix):
        raise OutputError(f"{prefix}: is the source checkpoint itself; write to another prefix")
    graph = tf.Graph()
    with graph.as_default():
        saver = _import(meta)
        if not graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
            raise TransferError(f"{meta}: the graph has no variables to start")
        start = warm_start(source, scopes, exclude, mapping, with_optimizer_state, on_missing, on_shape_mismatch,
                           on_dtype_mismatch, graph=graph)
        if on_plan:
            on_plan(start.plan)
        result = GraphResult(start.plan, prefix)
        if dry_run:
            return result
        check_output_prefix(prefix, force)
        if os.path.exists(prefix + ".meta") and not force:
            raise OutputError(f"{prefix}.meta: already exists (use --force to overwrite)")
        saver = saver or tf.compat.v1.train.Saver()
        initialise = [tf.compat.v1.global_variables_initializer(), tf.compat.v1.local_variables_initializer()]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(initialise)
            start.restore(session)
            result.paths = _save(saver, session, prefix)
    result.paths.append(update_state_file(prefix))
    return result


def _import(meta: str):  # -> tf.compat.v1.train.Saver | None
    if not sources.isfile(meta):
        raise NotFoundError(f"{meta}: no such meta graph file")
    if sources.is_url(meta):  # TensorFlow reads local files only: a copy, gone once imported
        with tempfile.TemporaryDirectory(prefix="ckpttools-meta-") as staging:
            local = os.path.join(staging, "graph.meta")
            sources.copy_file(meta, local)
            return _import_file(local, meta)
    return _import_file(sources.local_path(meta), meta)


def _import_file(path: str, meta: str):  # -> tf.compat.v1.train.Saver | None
    """Import the meta graph at local ``path`` (``meta`` as the user named it, for messages)."""
    try:
        return tf.compat.v1.train.import_meta_graph(path, clear_devices=True)
    except DecodeError as exc:
        raise CorruptFileError(f"{meta}: not a MetaGraphDef ({exc})") from None
    except (OSError, ValueError, KeyError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(f"{meta}: cannot import the meta graph ({first})") from None


def _save(saver, session, prefix: str) -> list[str]:
    """Save into a temporary directory beside ``prefix``, then move the files into place (index last)."""
    directory, base = os.path.split(os.path.abspath(prefix))
    staging = tempfile.mkdtemp(dir=directory, prefix=f".{base}.graph.", suffix=".partial")
    try:
        saved = saver.save(session, os.path.join(staging, base), write_meta_graph=True, write_state=False)
        if os.path.basename(saved) != base:
            raise OutputError(f"{prefix}: TensorFlow saved {saved} instead")
        names = sorted(os.listdir(staging), key=lambda name: name.endswith(".index"))
        finals: list[str] = []
        try:
            for name in names:
                final = os.path.join(os.path.dirname(prefix), name)
                os.replace(os.path.join(staging, name), final)
                finals.append(final)
        except BaseException:  # Ctrl-C or an error between moves: leave no part of OUT behind
            for final in finals:
                os.remove(final)
            raise
        return finals
    except OSError as exc:
        raise OutputError(f"{prefix}: write failed ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["GraphResult", "transfer_graph"]
