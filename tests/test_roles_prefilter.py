"""``roles.classify`` rules names out by searching their components for plain words before trying its rules;
that word filter must never hide a rule. Checked on every name the role tests know, every name in the shipped samples,
and variants of them (other case, deeper scopes, ``_N`` suffixes), against the rules applied one by one."""

from __future__ import annotations

import ast
from pathlib import Path

import ckpttools
from ckpttools import roles

ROOT = Path(__file__).resolve().parent.parent


def names_in_tests() -> set[str]:
    """Every string literal of the role tests that looks like a variable name."""
    found: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        if "role" not in path.read_text() or path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
                found.add(node.value)
    return {name for name in found if name and len(name) < 200}


def names_in_samples() -> set[str]:
    found: set[str] = set()
    for directory in ("tf1_cnn", "sharded", "tf2_keras"):
        with ckpttools.open_checkpoint(ROOT / "sample_checkpoints" / directory) as ckpt:
            found |= {name for info in ckpt for name in (info.name, info.key)}
    return found


def test_the_word_filter_hides_no_rule() -> None:
    names = names_in_tests() | names_in_samples()
    assert len(names) > 200
    variants = set(names)
    for name in names:
        variants |= {f"outer/{name}", f"{name}_1", name.lower(), name.upper(), name.title()}
    wrong = {name: (roles.classify(name), roles.classify_by_every_rule(name))
             for name in variants if roles.classify(name) != roles.classify_by_every_rule(name)}
    assert wrong == {}
    ordered = sorted(variants)
    assert roles.classify_all(ordered) == [roles.classify_by_every_rule(name) for name in ordered]
    model_only = [name for name in ordered if roles.classify(name) == "model"]
    assert roles.classify_all(model_only) == ["model"] * len(model_only)
