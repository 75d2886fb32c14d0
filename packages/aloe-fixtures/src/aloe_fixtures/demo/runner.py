"""Running the demo's steps: progress, resume, and the record of what ran.

* Each step prints ``[n/N] name: title`` and its command before it runs, and its seconds and artifacts
  after.
* A finished step leaves ``OUT/.demo/STEP.json`` (written atomically, last). A rerun skips every step
  whose marker names the same commands and config; an interrupted step runs again, and its commands
  resume where they can (the data pipeline from its last finished stage and CoT chunk, training from its
  last checkpoint, DPO from its last finished stage). Outputs a command does not resume into
  (``Step.fresh``) are removed first, so a rerun never trips over half of an earlier attempt.
* ``OUT/demo.json`` records the size, and a rerun into the same folder with another size is refused:
  markers would otherwise vouch for outputs of a different corpus.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from aloe_core.atomic import atomic_write_json
from aloe_core.errors import InputError
from aloe_fixtures.demo.layout import DemoLayout, DemoSize
from aloe_fixtures.demo.steps import Step, write_config

RECORD = "demo.json"


def check_size(layout: DemoLayout, size: DemoSize) -> None:
    """Refuse a folder that holds a demo of another size (a different corpus and schedule)."""
    record = layout.root / RECORD
    if record.is_file():
        earlier = json.loads(record.read_text(encoding="utf-8")).get("size")
        if earlier != size.as_dict():
            raise InputError(
                f"{layout.root}: holds a demo made with {earlier}, not {size.as_dict()}; "
                "use another --out or remove that folder"
            )


def run_command(argv: list[str]) -> None:
    """Run one `aloe` command line in this process, exactly as the `aloe` script parses it."""
    import typer.main

    from aloe_core.cli import build_app

    command = typer.main.get_command(build_app(only=argv[0]))
    code = command.main(args=argv, prog_name="aloe", standalone_mode=False)
    if isinstance(code, int) and code:
        raise InputError(f"`aloe {' '.join(argv)}` exited with {code}")


def _marker(layout: DemoLayout, step: Step) -> Path:
    return layout.state / f"{step.name}.json"


def finished(layout: DemoLayout, step: Step) -> dict[str, Any] | None:
    path = _marker(layout, step)
    if not path.is_file():
        return None
    marker = json.loads(path.read_text(encoding="utf-8"))
    return marker if marker.get("key") == step.key() else None


def _config_path(layout: DemoLayout, step: Step) -> Path | None:
    """The config file a step's command names (under OUT/configs/)."""
    for argv in step.commands:
        for arg in argv:
            if arg.startswith(str(layout.configs)):
                return Path(arg)
    return None


def run_step(layout: DemoLayout, step: Step) -> dict[str, Any]:
    """Run one step (its outputs that do not resume removed first) and record it as finished."""
    started = time.perf_counter()
    for path in step.fresh:
        shutil.rmtree(path, ignore_errors=True)
    if step.config is not None:
        config_path = _config_path(layout, step)
        assert config_path is not None, f"step {step.name} has a config but no command names it"
        write_config(config_path, step.config, step.commands[0])
    outcome: dict[str, Any] | None = None
    if step.function is not None:
        outcome = step.function()
    for argv in step.commands:
        typer.echo(f"    $ aloe {' '.join(argv)}")
        sys.stdout.flush()
        run_command(argv)
    marker = {
        "key": step.key(),
        "seconds": round(time.perf_counter() - started, 1),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "commands": [["aloe", *argv] for argv in step.commands],
        "outcome": outcome,
        "artifacts": {k: str(v) for k, v in step.artifacts.items()},
    }
    atomic_write_json(_marker(layout, step), marker)
    return marker


def run_steps(layout: DemoLayout, size: DemoSize, steps: list[Step]) -> dict[str, Any]:
    """Every step in order, skipping finished ones; returns (and writes) ``OUT/demo.json``."""
    check_size(layout, size)
    layout.state.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"size": size.as_dict(), "steps": []}
    atomic_write_json(layout.root / RECORD, record | {"complete": False})
    started = time.perf_counter()
    ran = 0
    for n, step in enumerate(steps, 1):
        marker = finished(layout, step)
        head = f"[{n:2d}/{len(steps)}] {step.name}: {step.title}"
        if marker is not None:
            typer.echo(f"{head} (done earlier, {marker['seconds']} s)")
        else:
            typer.echo(head)
            sys.stdout.flush()
            marker = run_step(layout, step)
            ran += 1
            where = "; ".join(f"{k}: {v}" for k, v in step.artifacts.items())
            typer.echo(f"    done in {marker['seconds']} s; {where}")
        record["steps"].append({"name": step.name, "title": step.title} | marker)
    record |= {"complete": True, "ran": ran, "seconds_this_run": round(time.perf_counter() - started, 1)}
    record["seconds_all_steps"] = round(sum(s["seconds"] for s in record["steps"]), 1)
    atomic_write_json(layout.root / RECORD, record)
    return record
