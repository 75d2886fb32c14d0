"""The `aloe demo` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo makes.")] = Path(
        "runs/demo"
    ),
    rows: Annotated[
        int, typer.Option("--rows", min=300, help="Rows of synthetic corpus to generate.")
    ] = 2000,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer epochs, red-team prompts and ensemble members (CI).")
    ] = False,
) -> None:
    """Run the whole recipe on the embedded corpus and the tiny model: data, release, SFT, two-stage DPO
    with red-teaming, merge, evaluation (zero-shot, Medprompt, RAG), model cards and a summary page.

    Rerunning into the same --out skips finished steps and resumes an interrupted one.
    """
    from aloe_fixtures.demo.layout import DemoLayout, DemoSize
    from aloe_fixtures.demo.runner import run_steps
    from aloe_fixtures.demo.steps import demo_steps
    from aloe_fixtures.demo.summary import write_summary

    layout, size = DemoLayout.at(out), DemoSize(rows=rows, quick=quick)
    steps = demo_steps(layout, size, lambda: write_summary(layout, steps))
    record = run_steps(layout, size, steps)
    typer.echo(
        f"demo: {record['ran']} of {len(steps)} steps ran in {record['seconds_this_run']} s "
        f"(all steps: {record['seconds_all_steps']} s)\nsummary: {layout.summary}"
    )
