"""Every `$ ckpttools ...` example of the README runs as written, and prints what the README shows.

Each ```console block is one example: its `$` commands run in order with bash, from a temporary copy of
the repository's `sample_checkpoints/` (so files one command writes are there for the next, and the
checkout stays clean). Where the README shows output after a command, the command's output (stdout and
stderr, as a terminal interleaves them) must be those lines:

- output drawn as a rich table (box characters) is compared with the command run on a terminal (a
  pseudo-terminal as wide as the widest line shown, no colours); anything else with the command piped;
- a line `...` stands for any number of lines; trailing spaces are ignored; the file name of an event
  file (`events.out.tfevents.<time>.<host>`) is compared without its time and host.

Blocks that train with TensorFlow (`train`, `eval`, `transfer`: minutes of CPU), install packages or
run benchmarks are skipped, each with its reason.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIPS = (
    (re.compile(r"^ckpttools (train|eval|transfer)\b"), "trains or evaluates with TensorFlow (minutes of CPU)"),
    (re.compile(r"\bpip install\b"), "installs packages"),
    (re.compile(r"\bbench/|make_samples"), "a benchmark or the sample generator, not an example"),
)
TABLE_CHARS = set("┏┃│└┡━")
EVENT_FILE = re.compile(r"events\.out\.tfevents\.\d+\.\S+")
TIMEOUT = 120


@dataclass
class Step:
    command: str
    expected: list[str]  # the lines the README shows after the command (empty: output not shown)


@dataclass
class Example:
    line: int  # where the block starts in README.md
    steps: list[Step]

    @property
    def skip_reason(self) -> str | None:
        for step in self.steps:
            for pattern, reason in SKIPS:
                if pattern.search(step.command):
                    return reason
        return None


def console_blocks(text: str) -> list[Example]:
    """The README's ```console blocks that run ckpttools, as commands with the output shown after each."""
    examples, lines = [], text.splitlines()
    number = 0
    while number < len(lines):
        if lines[number].strip() != "```console":
            number += 1
            continue
        start, body = number + 1, []
        number += 1
        while lines[number].strip() != "```":
            body.append(lines[number])
            number += 1
        steps = parse_steps(body)
        if any(step.command.startswith("ckpttools") or " ckpttools " in step.command for step in steps):
            examples.append(Example(start, steps))
    return examples


def parse_steps(body: list[str]) -> list[Step]:
    steps: list[Step] = []
    lines = iter(body)
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
            steps.append(Step(command, []))
        elif steps:
            steps[-1].expected.append(line)
    return steps


def run_piped(command: str, cwd: Path) -> str:
    result = subprocess.run(["bash", "-c", command], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=TIMEOUT, env=_env())
    return result.stdout


def run_on_terminal(command: str, cwd: Path, width: int) -> str:
    """The command's output on a pseudo-terminal ``width`` columns wide, without colour or styles."""
    main_fd, child_fd = pty.openpty()
    env = _env(COLUMNS=str(width), LINES="50", TERM="dumb")
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL, stdout=child_fd,
                               stderr=child_fd, env=env)
    os.close(child_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], TIMEOUT)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(TIMEOUT)
    os.close(main_fd)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, trailing spaces ignored; a `...` line in ``expected`` matches any run of lines."""
    def norm(line: str) -> str:
        return EVENT_FILE.sub("events.out.tfevents.*", line.rstrip())

    expected, actual = [norm(line) for line in expected], [norm(line) for line in actual]

    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and expected[i] == actual[j] and match(i + 1, j + 1)

    return match(0, 0)


EXAMPLES = console_blocks(README.read_text())


def test_bench_readme_names_no_machine_specific_paths() -> None:
    text = (ROOT / "bench" / "README.md").read_text()
    assert not re.search(r"/work/|/home/|/root/|/tmp/|\.\./shared|venv/bin", text)


def test_the_readme_has_examples_to_run() -> None:
    runnable = [example for example in EXAMPLES if example.skip_reason is None]
    assert len(runnable) >= 4, "the README's ckpttools examples were not found"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README.md:{example.line}" for example in EXAMPLES])
def test_readme_example(example: Example, tmp_path: Path) -> None:
    if example.skip_reason:
        pytest.skip(f"README.md:{example.line}: {example.skip_reason}")
    shutil.copytree(ROOT / "sample_checkpoints", tmp_path / "sample_checkpoints",
                    ignore=shutil.ignore_patterns("*.py", "README.md"))
    for step in example.steps:
        if any(char in TABLE_CHARS for line in step.expected for char in line):
            width = max(len(line) for line in step.expected)
            output = run_on_terminal(step.command, tmp_path, width)
        else:
            output = run_piped(step.command, tmp_path)
        actual = output.splitlines()
        if step.expected:
            assert matches(step.expected, actual), (
                f"README.md:{example.line}: `$ {step.command}` printed\n" + "\n".join(actual)
                + "\n--- the README shows ---\n" + "\n".join(step.expected))
        else:
            assert not any(line.startswith(("Error:", "Traceback")) for line in actual), (
                f"README.md:{example.line}: `$ {step.command}` failed:\n{output}")
