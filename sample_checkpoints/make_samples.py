"""Regenerate the shipped sample checkpoints with real TensorFlow: python sample_checkpoints/make_samples.py

The builders are those of tests/tf_fixtures.py (one implementation for tests and samples). The samples
keep only their last step and record relative paths in their ``checkpoint`` files, so they can be moved.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "tf_fixtures.py"
DOCTOR_FIXTURES = HERE.parent / "tests" / "tf_doctor_fixtures.py"
MAX_TOTAL_BYTES = 5 * 1024 * 1024
_STATE_PATH = re.compile(r'^\s*\w+_path\s*:\s*"(.*)"\s*$', re.M)


def load_fixtures(path: Path = FIXTURES) -> ModuleType:
    """Import tests/tf_fixtures.py (or another builder module) by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(fixtures: ModuleType) -> dict[str, str]:
    """Write each sample into a fresh directory; returns {sample: checkpoint prefix}."""
    builders = {
        "tf1_cnn": lambda d: fixtures.write_tf1_cnn(d, keep=1, relative_paths=True),
        "tf2_keras": fixtures.write_tf2_keras,
        "sharded": lambda d: fixtures.write_sharded(d, relative_paths=True),
        "slim_cnn5": lambda d: load_fixtures(DOCTOR_FIXTURES).build_cnn5_slim(d.parent, d.name),
    }
    prefixes = {}
    for name, write in builders.items():
        target = HERE / name
        shutil.rmtree(target, ignore_errors=True)
        prefixes[name] = next(iter(write(target).values())) if name == "slim_cnn5" else write(target)[name]
    return prefixes


def check(prefixes: dict[str, str]) -> int:
    """The state files must name existing checkpoints by relative path; the total must stay small."""
    for name, prefix in prefixes.items():
        state = (HERE / name / "checkpoint").read_text()
        paths = _STATE_PATH.findall(state)
        assert paths and all(not Path(p).is_absolute() for p in paths), f"{name}/checkpoint: {state!r}"
        assert paths[0] == Path(prefix).name and Path(prefix + ".index").is_file(), (name, paths)
    total = sum(f.stat().st_size for name in prefixes for f in (HERE / name).rglob("*") if f.is_file())
    assert total < MAX_TOTAL_BYTES, f"samples take {total} bytes, over {MAX_TOTAL_BYTES}"
    return total


def main() -> int:
    prefixes = build(load_fixtures())
    total = check(prefixes)
    for name, prefix in prefixes.items():
        print(f"{name}: {Path(prefix).relative_to(HERE)}")
    print(f"total {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
