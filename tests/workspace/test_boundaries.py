"""The package boundaries hold: what each package pulls in when installed alone, and who imports whom.

Installs run with uv into throwaway venvs, constrained to the versions in ``uv.lock`` (so they reuse
uv's cache and take seconds), exactly as a user runs ``pip install ./packages/<name>``.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"

# Who may import whom (the package itself included). Fixtures sit on top: they write what aloe-data
# reads and run its pipeline, and `aloe demo` runs the whole recipe; training reads shards through
# aloe-core only.
ALLOWED = {
    "aloe_core": {"aloe_core"},
    "aloe_infer": {"aloe_core", "aloe_infer"},
    "aloe_data": {"aloe_core", "aloe_infer", "aloe_data"},
    "aloe_train": {"aloe_core", "aloe_train"},
    "aloe_fixtures": {"aloe_core", "aloe_infer", "aloe_data", "aloe_train", "aloe_fixtures"},
}
# Third-party modules a package must not import at all (not even lazily). aloe-train may draw its loss
# curve with matplotlib when the `plots` extra is installed; the install test checks it is not pulled.
FORBIDDEN = {
    "aloe_core": {"torch", "transformers", "vllm", "numba", "datasketch"},
    "aloe_train": {"numba", "datasketch", "py3langid", "vllm"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_is_in_the_import_graph():
    found = {p.name for p in PACKAGES.glob("aloe-*/src/aloe_*")}
    assert found == set(ALLOWED), "add a new package to ALLOWED (and to the README's import graph)"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_imports_one_above_it(package):
    problems = []
    for path in sorted(PACKAGES.glob(f"*/src/{package}/**/*.py")):
        imported = _imports(path)
        upward = {m for m in imported if m.startswith("aloe_")} - ALLOWED[package]
        heavy = imported & FORBIDDEN.get(package, set())
        if upward or heavy:
            problems.append(f"{path.relative_to(ROOT)}: imports {sorted(upward | heavy)}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def constraints(tmp_path_factory) -> Path:
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH; the workspace is installed with uv (see README)")
    path = tmp_path_factory.mktemp("lock") / "constraints.txt"
    exported = subprocess.run(
        ["uv", "export", "--frozen", "--no-hashes", "--no-emit-workspace", "--all-packages", "-q"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path.write_text(exported, encoding="utf-8")
    return path


def _install_alone(package: str, venv: Path, constraints: Path) -> set[str]:
    """Install ``packages/<package>`` into a fresh venv; the distribution names it brought in."""
    subprocess.run(["uv", "venv", "-q", str(venv)], check=True, capture_output=True)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            str(venv),
            "-c",
            str(constraints),
            str(PACKAGES / package),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    listed = subprocess.run(
        ["uv", "pip", "list", "--format", "json", "--python", str(venv)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {entry["name"].lower() for entry in json.loads(listed)}


def _loaded_modules(venv: Path, code: str) -> set[str]:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.slow
def test_aloe_core_alone_pulls_no_torch(tmp_path, constraints):
    installed = _install_alone("aloe-core", tmp_path / "core", constraints)
    assert "aloe-core" in installed
    assert not installed & {"torch", "transformers", "tokenizers", "safetensors", "numba"}, sorted(installed)
    loaded = _loaded_modules(
        tmp_path / "core", "import aloe_core.cli, aloe_core.shards, aloe_core.config, aloe_core.ray_session"
    )
    assert "torch" not in loaded
    help_text = subprocess.run(
        [str(tmp_path / "core" / "bin" / "aloe"), "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "Usage: aloe" in help_text


@pytest.mark.slow
def test_aloe_train_alone_pulls_no_data_pipeline_dependencies(tmp_path, constraints):
    installed = _install_alone("aloe-train", tmp_path / "train", constraints)
    assert {"aloe-train", "aloe-core", "torch"} <= installed
    assert not installed & {"aloe-data", "aloe-infer", "numba", "datasketch", "py3langid", "matplotlib"}, (
        sorted(installed)
    )
    loaded = _loaded_modules(tmp_path / "train", "import aloe_train.cli")
    assert not loaded & {"aloe_data", "aloe_infer", "numba"}
