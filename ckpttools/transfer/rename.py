"""``--map OLD=NEW`` rules: how source variable names become target names.

Rules apply in order, each to the result of the one before:

* ``OLD=NEW`` replaces whole scope components: ``conv1=conv_block1`` turns
  ``Net/conv1/w`` into ``Net/conv_block1/w`` but leaves ``Net/conv10/w`` alone;
  ``Net/=cnn/`` renames the ``Net`` scope (slashes at the ends are optional).
* ``re:REGEX=REPLACEMENT`` is ``re.sub`` with backreferences (``\\1``); the
  split is at the *last* ``=``, so a replacement cannot contain ``=``.

Example: ``--map 're:^tower_0/(.*)=\\1' --map Net/=cnn/`` maps
``tower_0/Net/conv1/w`` to ``cnn/conv1/w``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import NotFoundError, PatternError
from ..storage import sources

_REGEX_PREFIX = "re:"


@dataclass(frozen=True)
class Rule:
    """One compiled rule: a regex and its replacement."""

    text: str
    regex: re.Pattern[str]
    replacement: str

    def apply(self, name: str) -> str:
        return self.regex.sub(self.replacement, name)


def compile_rule(text: str) -> Rule:
    """Compile ``OLD=NEW`` or ``re:REGEX=REPLACEMENT``, refusing malformed rules with a clear error."""
    if "=" not in text:
        raise PatternError(f"--map '{text}': expected OLD=NEW (or re:REGEX=REPLACEMENT)")
    if text.startswith(_REGEX_PREFIX):
        pattern, replacement = text[len(_REGEX_PREFIX) :].rsplit("=", 1)
        try:
            regex = re.compile(pattern)
            regex.sub(replacement, "")  # surfaces bad backreferences now, not mid-transfer
        except re.error as exc:
            raise PatternError(f"--map '{text}': {exc}") from None
        return Rule(text, regex, replacement)
    old, new = (part.strip("/") for part in text.split("=", 1))
    if not old:
        raise PatternError(f"--map '{text}': the OLD side is empty")
    regex = re.compile(rf"(?:^|(?<=/)){re.escape(old)}(?=/|$)")
    return Rule(text, regex, new.replace("\\", "\\\\"))


class Renamer:
    """Applies ``--map`` rules in order; with no rules a name maps to itself."""

    def __init__(self, rules: Sequence[str] = ()) -> None:
        self.rules = [compile_rule(text) for text in rules]

    def __call__(self, name: str) -> str:
        renamed = name
        for rule in self.rules:
            renamed = rule.apply(renamed)
        return tidy(name, renamed)


def tidy(original: str, renamed: str) -> str:
    """Drop the stray ``/`` a rule leaves where it removed a scope (``a/=`` on ``a/b``); a name no rule
    changed stays as it is, and empty components the name already had (Estimator's ``linear//weight``)
    are kept, since they are part of the checkpoint key."""
    if renamed == original:
        return original
    renamed = renamed.strip("/")
    return renamed if "//" in original else renamed.replace("//", "/")


def read_map_file(path: str) -> list[str]:
    """The rules of a ``--map-file``: one ``OLD=NEW`` or ``re:...`` rule per line; blank and ``#`` lines skipped.

    Each rule is compiled here, so a bad line is reported with the file and line number.
    """
    try:
        lines = sources.read_bytes(path).decode("utf-8").splitlines()  # a local file or a URL
    except (FileNotFoundError, NotFoundError):
        raise NotFoundError(f"{path}: no such map file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotFoundError(f"{path}: cannot read map file ({exc})") from None
    rules = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            compile_rule(text)
        except PatternError as exc:
            raise PatternError(f"{path}:{number}: {exc}") from None
        rules.append(text)
    return rules
