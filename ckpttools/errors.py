"""Domain errors, each carrying the exit code the CLI turns it into.

The library raises these; the CLI prints ``Error: <message>`` on one line and
exits with ``exit_code``. Messages name the file (and the variable, where there
is one), say what is wrong, and where possible how to fix it.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_DIFFERENT = 1  # reserved for comparisons (`diff`): inputs differ
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_NOT_FOUND = 3
EXIT_BAD_DATA = 4
EXIT_OUTPUT = 5
EXIT_MISSING_DEPENDENCY = 6
EXIT_TRANSFER = 7
EXIT_CLUSTER = 8  # a distributed training task could not start or failed
EXIT_REMOTE = 9  # remote storage refused, failed or timed out (s3://, gs://, https://...)
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by Ctrl-C"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CkptError(Exception):
    """Base class of every error ckpttools reports to users."""

    exit_code = EXIT_BAD_DATA

    def __str__(self) -> str:
        # One line whatever the file held: names read from a file may contain newlines or escapes.
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], super().__str__())


class NotFoundError(CkptError):
    """A path, checkpoint or variable does not exist."""

    exit_code = EXIT_NOT_FOUND


class CorruptFileError(CkptError):
    """A file exists but its bytes are not what the format says they must be."""

    exit_code = EXIT_BAD_DATA


class NotACheckpointError(CorruptFileError):
    """A file is readable but is not a checkpoint of any format we know."""


class ChecksumError(CorruptFileError):
    """Stored bytes do not match their crc32c."""


class MissingDataError(CkptError):
    """The index lists a tensor whose data shard is missing or short."""

    exit_code = EXIT_BAD_DATA


class UnsupportedError(CkptError):
    """A valid file uses a feature this version cannot decode."""

    exit_code = EXIT_BAD_DATA


class PatternError(CkptError):
    """A scope pattern cannot be parsed."""

    exit_code = EXIT_USAGE


class OutputError(CkptError):
    """An output cannot be written (exists, not writable, disk full)."""

    exit_code = EXIT_OUTPUT


class MissingDependencyError(CkptError):
    """An optional dependency (TensorFlow) is needed but not installed."""

    exit_code = EXIT_MISSING_DEPENDENCY


class DataError(CkptError):
    """A data set file (IDX) is malformed, truncated or inconsistent with its partner."""

    exit_code = EXIT_BAD_DATA


class ConfigError(CkptError):
    """A training or evaluation setting is invalid or conflicts with the run it targets."""

    exit_code = EXIT_USAGE


class TransferError(CkptError):
    """A transfer plan cannot be carried out under the chosen policies (e.g. --strict)."""

    exit_code = EXIT_TRANSFER


class ClusterError(CkptError):
    """A distributed training task could not start, could not be reached, or failed."""

    exit_code = EXIT_CLUSTER


class ArgumentError(CkptError):
    """An argument of a command or API call is invalid (an output name with no known format...)."""

    exit_code = EXIT_USAGE


class InputMismatchError(CkptError):
    """Inputs that must agree do not (averaged checkpoints with different variables, shapes or dtypes)."""

    exit_code = EXIT_BAD_DATA


def bounded(text: str, limit: int = 200) -> str:
    """``text`` made fit to quote in a one-line message: control and other unprintable characters
    escaped (so raw bytes or newlines from a file never reach the terminal), and cut to ``limit``
    characters with a note of the full length.

    Example:
        >>> bounded("a\\nb" + "x" * 300, limit=10)
        'a\\\\nbxxxxxx… (303 characters)'
    """
    total = len(text)
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: 4 * limit])  # escapes only lengthen
    if len(shown) <= limit and total <= 4 * limit:
        return shown
    return f"{shown[:limit]}… ({total:,} characters)"


class RemoteError(CkptError):
    """Remote storage refused access, failed, or timed out (the message names the URL, never credentials)."""

    exit_code = EXIT_REMOTE
