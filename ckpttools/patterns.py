"""Scope patterns: how every command selects variables by name.

Variable names are `/`-separated scope paths such as `cnn/conv_block2/conv/kernel`. A pattern
is shell-style and selects a variable when its components match **consecutive whole components**
of the name, at any depth. Matching is case-sensitive.

| pattern | selects | does not select |
| --- | --- | --- |
| `conv/kernel` | `cnn/conv_block1/conv/kernel` | `cnn/convolution/kernel` |
| `cnn/*/bias` | `cnn/dense/bias`, `cnn/conv_block1/bias` | `cnn/conv_block1/conv/bias` |
| `cnn/**/kernel` | `cnn/kernel`, `cnn/a/b/kernel` | `rnn/a/kernel` |
| `conv_block[1-3]` | `cnn/conv_block2/conv/kernel` | `cnn/conv_block4/conv/kernel` |
| `layer[1-12]` | `layer1` ... `layer12` | `layer0`, `layer13` |
| `step_[01-10]` | `step_01` ... `step_10` | `step_1`, `step_11` |
| `/cnn` | `cnn/dense/bias` | `model/cnn/dense/bias` |
| `linear//weight` | `linear//weight` | `linear/weight` |
| `re:kernel$` | any name ending in `kernel` | `cnn/kernel/Adam` |

- `*` is any run of characters within one component (it never crosses `/`); `?` is one character.
- `[abc]`, `[a-z]`, `[!abc]` are character classes, as in Python's `fnmatch`.
- A range whose bounds are integers and one of them has two or more digits is **numeric**:
  `[1-12]` is the whole number 1 to 12, never a part of a longer number (`layer[1-12]` does not
  select `layer123`). A lower bound with a leading zero sets a fixed width: `[01-10]` is `01`..`10`.
  Single-digit ranges such as `[0-9]` stay one-character classes, so `[0-9][0-9]` is two digits.
  A range may hold at most 100000 numbers.
- `**` as a whole component matches zero or more components.
- `//` is an empty component: `linear//weight` selects `linear//weight` (real Estimator checkpoints
  hold such names); `*` matches an empty component too.
- A leading `/` anchors the pattern at the first component; a trailing `/` is ignored.
- `re:REGEX` searches the full name with a Python regular expression (`re.search`).
- Several patterns select the union of what each selects; no pattern selects everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .errors import PatternError

REGEX_PREFIX = "re:"
MAX_RANGE_VALUES = 100_000

_ANY_COMPONENTS = "**"
_NUMERIC_RANGE = re.compile(r"(\d+)-(\d+)")
_CLASS_SPECIALS = re.compile(r"([\\\[\]^&~|])")  # escaped inside [...] so re reads them literally


class Pattern(NamedTuple):
    """One compiled scope pattern.

    Example:
        >>> compile_pattern("conv_block[1-3]").matches("cnn/conv_block2/conv/kernel")
        True
    """

    text: str
    regex: re.Pattern[str]

    def matches(self, name: str) -> bool:
        """True if this pattern selects the variable ``name``."""
        return self.regex.search(name) is not None


def compile_pattern(pattern: str) -> Pattern:
    """Compile a scope pattern (or a ``re:`` regular expression) to one Python regex.

    Example:
        >>> compile_pattern("cnn/*/bias").matches("cnn/dense/bias")
        True

    Raises:
        PatternError: the pattern is empty, has an unbalanced bracket, an absurd range or a bad regex.
    """
    is_regex = pattern.startswith(REGEX_PREFIX)
    body = pattern[len(REGEX_PREFIX) :] if is_regex else pattern.strip("/")
    if not body.strip():
        raise PatternError(
            f"empty scope pattern {pattern!r}: give a scope such as 'conv_block1' or 're:kernel$'"
        )
    return Pattern(pattern, _compile_regex(pattern, body if is_regex else _glob_to_regex(pattern)))


class Selector:
    """A set of scope patterns: a name is selected if any pattern matches it.

    An empty set selects everything, so commands can treat "no --scopes" as "all variables".

    Example:
        >>> selector = Selector(["conv_block[1-2]", "dense"])
        >>> selector.matches("cnn/conv_block1/conv/kernel"), selector.matches("cnn/logits/bias")
        (True, False)
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(compile_pattern(text) for text in dict.fromkeys(patterns))
        self._searches = tuple(pattern.regex.search for pattern in self.patterns)  # bound once: hot path

    def matches(self, name: str) -> bool:
        """True if ``name`` is selected (always True when there are no patterns)."""
        if not self._searches:
            return True
        for search in self._searches:
            if search(name) is not None:
                return True
        return False

    def unmatched(self, names: Iterable[str]) -> list[str]:
        """The patterns that select none of ``names``, in the order given, so callers can warn.

        Example:
            >>> Selector(["dense", "lstm"]).unmatched(["cnn/dense/bias"])
            ['lstm']
        """
        waiting = list(self.patterns)
        for name in names:
            if not waiting:
                break
            waiting = [pattern for pattern in waiting if not pattern.matches(name)]
        return [pattern.text for pattern in waiting]


def select(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The names any of ``patterns`` selects, in their original order.

    Example:
        >>> select(["cnn/conv/kernel", "cnn/dense/kernel"], ["conv"])
        ['cnn/conv/kernel']
    """
    selector = Selector(patterns)
    return [name for name in names if selector.matches(name)]


def _compile_regex(pattern: str, regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as exc:
        raise PatternError(f"bad scope pattern {pattern!r}: invalid regular expression ({exc})") from None


def _glob_to_regex(pattern: str) -> str:
    """Translate a shell-style scope pattern to a regex matching consecutive whole components."""
    anchored = pattern.startswith("/")
    body = pattern[1:] if anchored else pattern
    components = body.rstrip("/").split("/")  # "a//b": an empty component, as in `linear//weight`
    components = _drop_redundant_any(components)
    if components and components[0] == _ANY_COMPONENTS:
        anchored, components = False, components[1:]  # "/**/x" selects what "x" selects
    if not components:
        return r"(?s:.)"  # "**" alone: every name
    parts = ["^" if anchored else "(?:^|/)"]
    for i, component in enumerate(components):
        if component == _ANY_COMPONENTS:
            parts.append(r"(?:/[^/]*)*")  # components may be empty
        else:
            parts.append(("/" if i else "") + _component_to_regex(pattern, component))
    parts.append("(?:/|$)")
    return "".join(parts)


def _drop_redundant_any(components: list[str]) -> list[str]:
    """Collapse repeated ``**`` and drop a trailing one (a match may be followed by anything anyway)."""
    out: list[str] = []
    for component in components:
        if not (component == _ANY_COMPONENTS and out and out[-1] == _ANY_COMPONENTS):
            out.append(component)
    if len(out) > 1 and out[-1] == _ANY_COMPONENTS:
        out.pop()
    return out


def _component_to_regex(pattern: str, component: str) -> str:
    """Translate one component: wildcards stay within it, brackets become classes or numeric ranges."""
    out: list[str] = []
    i = 0
    while i < len(component):
        char = component[i]
        if char == "*":
            if not out or out[-1] != "[^/]*":
                out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = _bracket_end(pattern, component, i)
            out.append(_bracket_to_regex(pattern, component[i + 1 : end]))
            i = end + 1
        elif char == "]":
            raise PatternError(f"bad scope pattern {pattern!r}: ']' without a matching '[' in {component!r}")
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _bracket_end(pattern: str, component: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start`` (fnmatch rules: ``[]]``, ``[!]]``)."""
    i = start + 1
    if i < len(component) and component[i] == "!":
        i += 1
    if i < len(component) and component[i] == "]":
        i += 1
    end = component.find("]", i)
    if end < 0:
        raise PatternError(
            f"bad scope pattern {pattern!r}: unbalanced '[' in {component!r} (a [...] class must close "
            "within one scope component)"
        )
    return end


def _bracket_to_regex(pattern: str, inside: str) -> str:
    numeric = _NUMERIC_RANGE.fullmatch(inside)
    if numeric and max(len(numeric[1]), len(numeric[2])) > 1:
        return _numeric_range_regex(pattern, numeric[1], numeric[2])
    if inside.startswith("!"):
        return "[^" + _CLASS_SPECIALS.sub(r"\\\1", inside[1:]) + "/]"
    return "[" + _CLASS_SPECIALS.sub(r"\\\1", inside) + "]"


def _numeric_range_regex(pattern: str, low_text: str, high_text: str) -> str:
    """A regex for the whole numbers ``low``..``high``, zero-padded if ``low_text`` has a leading 0.

    Built digit by digit, so the regex stays short however wide the range.
    """
    low, high = int(low_text), int(high_text)
    if low > high:
        raise PatternError(f"bad scope pattern {pattern!r}: range [{low_text}-{high_text}] runs backwards")
    if high - low + 1 > MAX_RANGE_VALUES:
        raise PatternError(
            f"bad scope pattern {pattern!r}: range [{low_text}-{high_text}] holds {high - low + 1} numbers "
            f"(at most {MAX_RANGE_VALUES})"
        )
    padded = len(low_text) > 1 and low_text.startswith("0")
    min_width = len(low_text) if padded else len(str(low))
    alternatives: list[str] = []
    for width in range(min_width, len(str(high)) + 1):
        first = low if width == min_width else 10 ** (width - 1)
        last = min(high, 10**width - 1)
        if first <= last:
            alternatives += _fixed_width_range(str(first).zfill(width), str(last).zfill(width))
    return "(?<![0-9])(?:" + "|".join(alternatives) + ")(?![0-9])"


def _fixed_width_range(low: str, high: str) -> list[str]:
    """Regexes that together match exactly the digit strings from ``low`` to ``high`` (same length)."""
    if not low:
        return [""]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _fixed_width_range(low[1:], high[1:])]
    tail = len(low) - 1
    out: list[str] = []
    full_from, full_to = int(low[0]), int(high[0])
    if low[1:] != "0" * tail:
        out += [low[0] + rest for rest in _fixed_width_range(low[1:], "9" * tail)]
        full_from += 1
    if high[1:] != "9" * tail:
        full_to -= 1
    if full_from <= full_to:
        digit = str(full_from) if full_from == full_to else f"[{full_from}-{full_to}]"
        out.append(digit + ("[0-9]" * tail if tail < 3 else f"[0-9]{{{tail}}}"))
    if high[1:] != "9" * tail:
        out += [high[0] + rest for rest in _fixed_width_range("0" * tail, high[1:])]
    return out
