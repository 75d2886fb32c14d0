"""The `aloe` command: groups, help texts, and one-line errors for the mistakes users make."""

from __future__ import annotations

import subprocess
import sys

import pytest


def aloe(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aloe_core.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_root_help_lists_every_group():
    result = aloe("--help")
    assert result.returncode == 0, result.stderr
    listed = {
        line.split()[1]
        for line in result.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2
    }
    assert {"data", "train", "infer", "model", "demo"} <= listed, result.stdout


@pytest.mark.parametrize(
    "group",
    [
        "data",
        "train",
        "infer",
        "model",
        "data run",
        "data sample",
        "data ingest",
        "data clean",
        "data exact-dedup",
        "data dedup",
        "data decontaminate",
        "data score",
        "data select",
        "data template",
        "data cot",
        "train show-masking",
        "train sft",
        "train dpo",
        "train merge",
        "infer generate",
        "model tiny",
        "demo",
    ],
)
def test_every_command_explains_itself(group):
    result = aloe(*group.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: aloe " + group in " ".join(result.stdout.split())
    assert len(result.stdout.strip().splitlines()) > 3


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_command_is_one_line():
    line = one_line_error(aloe("dta"))
    assert line == "aloe: error: No such command 'dta'. Did you mean 'data'? (see `aloe --help`)"


def test_bad_config_is_one_line_naming_the_field(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "sources:\n  - {name: a, format: medmcqa, path: x.jsonl}\nstages:\n  - {type: clean, max_chars: -5}\n"
    )
    line = one_line_error(aloe("data", "run", str(config), "--out", str(tmp_path / "out")))
    assert line == f"aloe: error: {config}: stages[0].clean.max_chars: must be > 0"


def test_missing_config_and_missing_input_are_one_line(tmp_path):
    line = one_line_error(aloe("data", "run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")))
    assert line == f"aloe: error: {tmp_path / 'nope.yaml'}: config file not found"
    line = one_line_error(
        aloe("data", "clean", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    )
    assert line == f"aloe: error: {tmp_path / 'missing'}: no such file or folder"


@pytest.mark.parametrize(("command", "absent"), [("data ingest", "torch"), ("infer generate", "ray.data")])
def test_a_command_imports_only_what_its_group_needs(command, absent):
    """Start-up: `aloe data ...` mounts the data group alone, so torch (which `aloe train` imports, seconds
    of start-up) is never loaded; nor is Ray Data by `aloe infer`."""
    code = (
        "import sys\nfrom aloe_core.cli import main\n"
        f"try:\n    main({[*command.split(), '--help']!r})\n"
        "except SystemExit as exc:\n    assert exc.code == 0\n"
        f"print({absent!r} in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout
