"""Resume: a killed run restarts at the first unfinished stage and ends byte-identical to a clean run;
a finished run does no work; a changed stage reruns with everything after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aloe_core.atomic import is_debris
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline

pytestmark = pytest.mark.slow  # five pipeline runs and three kills: CI's second step

KILL_AT = Path(__file__).with_name("kill_at.py")
STAGES = ["01-ingest", "02-clean", "03-exact-dedup", "04-fuzzy-dedup", "05-decontaminate"]


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("resume")
    write_sample(directory / "sample", rows=1500, seed=3)
    path = directory / "pipeline.yaml"
    raw = sample_pipeline(directory / "sample", "sft") | {"output": {"shard_rows": 400}, "report": False}
    path.write_text("# test pipeline\n" + yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def reference(ray_session, config_file, tmp_path_factory) -> Path:
    """One uninterrupted run, the bytes every resumed run must end with."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert aloe(["data", "run", str(config_file), "--out", str(out)], address(ray_session)).wait() == 0
    return out


def address(ray_session) -> str:
    return ray_session.get_runtime_context().gcs_address


def aloe(args: list[str], ray_address: str, *, prefix: tuple[str, ...] = ("-m", "aloe_core.cli"), **kwargs):
    env = os.environ | {"RAY_ADDRESS": ray_address}
    return subprocess.Popen([sys.executable, *prefix, *args], env=env, **kwargs)


def debris(out: Path) -> list[str]:
    """Temporary files and folders of atomic writes anywhere in (or beside) the run folder."""
    return sorted(p.name for p in out.parent.rglob("*") if is_debris(p.name))


def assert_same_bytes(run: Path, reference: Path) -> None:
    assert list(entries(run)) == STAGES
    assert stage_files(run) == stage_files(reference)
    for relative, digest in stage_files(reference).items():
        assert (run / relative).read_bytes() == (reference / relative).read_bytes(), relative
        assert digest
    assert debris(run) == []


def stage_files(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        f"{name}/{f}": info["sha256"]
        for name, entry in manifest["stages"].items()
        for f, info in {**entry["files"], **entry["dropped_files"]}.items()
    }


def entries(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["stages"]


def test_killed_run_resumes_to_identical_shards(ray_session, config_file, reference, tmp_path):
    killed = tmp_path / "killed"
    args = ["data", "run", str(config_file), "--out", str(killed)]
    # SIGKILL right after the manifest write that recorded 02-clean: between two stages.
    kill = ["replaced", "manifest.json", "4", "--", *args]
    process = aloe(kill, address(ray_session), prefix=(str(KILL_AT),))
    assert process.wait() == -signal.SIGKILL
    assert list(entries(killed)) == ["01-ingest", "02-clean"], "the run was not killed after its second stage"
    before = entries(killed)

    assert aloe(args, address(ray_session)).wait() == 0
    after = entries(killed)
    assert {k: after[k] for k in before} == before  # finished stages were not redone
    assert_same_bytes(killed, reference)


@pytest.mark.parametrize(
    ("point", "name", "nth", "left", "finished"),
    [
        # Inside the manifest write that records 02-clean: its temp file is complete, not yet in place.
        ("replace", "manifest.json", 4, ".manifest.json.", ["01-ingest"]),
        # 03-exact-dedup's shards are all written in its temporary folder, not yet renamed into place.
        ("rename", "03-exact-dedup", 1, ".03-exact-dedup.tmp", ["01-ingest", "02-clean"]),
    ],
    ids=["inside-manifest-write", "before-stage-rename"],
)
def test_kill_at_an_exact_instant_leaves_debris_that_resume_removes(
    ray_session, config_file, reference, tmp_path, point, name, nth, left, finished
):
    out = tmp_path / "run"
    args = ["data", "run", str(config_file), "--out", str(out)]
    killed = aloe([point, name, str(nth), "--", *args], address(ray_session), prefix=(str(KILL_AT),))
    assert killed.wait() == -signal.SIGKILL
    assert list(entries(out)) == finished
    assert [d for d in debris(out) if d.startswith(left)], f"the kill left no {left}* to clean up"

    assert aloe(args, address(ray_session)).wait() == 0
    assert_same_bytes(out, reference)


def test_finished_run_does_no_work_and_changed_stage_reruns(ray_session, config_file, tmp_path):
    address = ray_session.get_runtime_context().gcs_address
    out = tmp_path / "run"
    assert aloe(["data", "run", str(config_file), "--out", str(out)], address).wait() == 0
    first = entries(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}

    result = aloe(
        ["data", "run", str(config_file), "--out", str(out)], address, stderr=subprocess.PIPE, text=True
    )
    _, stderr = result.communicate()
    assert result.returncode == 0
    assert entries(out) == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == mtimes
    assert stderr.count("finished earlier, skipped") == 5

    raw = yaml.safe_load(config_file.read_text())
    raw["stages"][0]["min_answer_chars"] = 25
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(raw))
    assert aloe(["data", "run", str(changed), "--out", str(out)], address).wait() == 0
    second = entries(out)
    assert second["01-ingest"] == first["01-ingest"]
    assert second["02-clean"]["key"] != first["02-clean"]["key"]
    assert second["03-exact-dedup"]["key"] != first["03-exact-dedup"]["key"]
    assert (
        second["02-clean"]["dropped"]["min_answer_chars"] > first["02-clean"]["dropped"]["min_answer_chars"]
    )
