"""`aloe demo`: the main job end to end on the embedded corpus, with nothing to download.

Today it writes the synthetic corpus and runs the data pipeline (sft and preference runs) with every
stage that exists; each later capability (scoring, chain-of-thought, training, evaluation) adds its step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aloe_fixtures.corpus.defects import PREFERENCE
from aloe_fixtures.corpus.formats import SOURCE_FILES

# Where write_sample puts each source (relative to the sample folder) and the layout to read it as.
SAMPLE_SFT_SOURCES = [source for source in SOURCE_FILES if source[1] != PREFERENCE]
SAMPLE_PREFERENCE_SOURCES = [source for source in SOURCE_FILES if source[1] == PREFERENCE]


def demo_stages(sample_dir: Path, kind: str) -> list[dict[str, Any]]:
    """Every data stage that exists, set up for the sample corpus (decontaminated against its benchmark)."""
    stages: list[dict[str, Any]] = [{"type": "clean"}, {"type": "exact_dedup"}]
    if kind == "sft":
        stages.append({"type": "fuzzy_dedup"})
        stages.append({"type": "decontaminate", "benchmarks": [str(Path(sample_dir) / "benchmarks")]})
    return stages


def sample_pipeline(sample_dir: Path, kind: str = "sft", stages: list[dict] | None = None) -> dict[str, Any]:
    """A pipeline config (as a dict) over the sample corpus written by ``aloe data sample``."""
    table = SAMPLE_SFT_SOURCES if kind == "sft" else SAMPLE_PREFERENCE_SOURCES
    return {
        "kind": kind,
        "sources": [{"name": n, "path": str(Path(sample_dir) / p), "format": f} for n, p, f in table],
        "stages": demo_stages(sample_dir, kind) if stages is None else stages,
        "output": {"shard_rows": 2000},
    }


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path(
        "runs/demo"
    ),
    rows: Annotated[
        int, typer.Option("--rows", min=100, help="Rows of synthetic corpus to generate.")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Run the main job on the embedded corpus: sample data, then the data pipeline (sft + preference)."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.report import write_report
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_fixtures.corpus import write_sample

    sample_dir = out / "sample"
    if not (sample_dir / "ground_truth.json").is_file():
        write_sample(sample_dir, rows=rows, seed=seed)
    typer.echo(f"corpus: {sample_dir}")
    for kind in ("sft", "preference"):
        config = validate_config(PipelineConfig, sample_pipeline(sample_dir, kind), f"demo {kind} pipeline")
        run_dir = out / f"data-{kind}"
        manifest = run_pipeline(config, run_dir)
        last = list(manifest.stages.values())[-1]
        report = write_report(run_dir, manifest)
        typer.echo(f"{kind}: {last['rows_out']} rows in {run_dir / last['stage']}; report {report['html']}")
