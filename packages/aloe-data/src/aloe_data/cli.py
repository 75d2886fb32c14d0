"""`aloe data ...`: the whole pipeline (`run`), ingest of one source, and each stage on its own.

The stage commands are generated from the stages' config classes (:mod:`aloe_data.commands`) when the
`data` group is asked for them, so `aloe --help` never imports a stage. Command modules import Ray,
pyarrow and the stages lazily, inside the commands, for the same reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aloe_core.shards import Kind
from aloe_core.storage import location


class DataGroup(TyperGroup):
    """The `aloe data` group: its own commands, then one command per registered stage, built on first use."""

    _stage_commands: dict[str, Any] | None = None

    def _stages(self) -> dict[str, Any]:
        if DataGroup._stage_commands is None:
            from aloe_data.commands import stage_command
            from aloe_data.stages import STAGE_CLASSES

            DataGroup._stage_commands = {cls.command_name(): stage_command(cls) for cls in STAGE_CLASSES}
        return DataGroup._stage_commands

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        first = [n for n in ("run", "ingest") if n in own]
        return first + list(self._stages()) + [n for n in own if n not in first]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        return command if command is not None else self._stages().get(cmd_name)


app = typer.Typer(
    cls=DataGroup,
    help="Curate data on Ray Data: run a whole pipeline from a YAML config, or one stage on Parquet shards.",
    no_args_is_help=True,
)

# Output folders may be object-store URIs (s3://bucket/run), which Path would mangle: `location` keeps
# those as strings and makes local ones Paths.
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        parser=location,
        help="Folder or s3:// / gs:// URI for part-*.parquet, _dropped/ and manifest.json.",
    ),
]
OldOutOpt = Annotated[Path | None, typer.Option("--output", "--output-dir", parser=location, hidden=True)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="key.sub=value over the YAML (e.g. stages.fuzzy_dedup.threshold=0.85); repeatable."
    ),
]
RayCpusOpt = Annotated[
    int | None, typer.Option("--ray-cpus", help="CPUs of the local Ray (ignored with RAY_ADDRESS).")
]
OldCpusOpt = Annotated[int | None, typer.Option("--num-cpus", hidden=True)]
ShardOpt = Annotated[int, typer.Option("--shard-rows", help="Rows per output Parquet file at most.")]


def _echo_entry(entry: dict) -> None:
    from aloe_data.pipeline.runner import describe_entry

    typer.echo(describe_entry(entry))


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Pipeline YAML (see configs/data/).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", parser=location, help="Run folder or s3:// / gs:// URI; rerunning into it resumes."
        ),
    ] = None,
    output: OldOutOpt = None,
    overrides: SetOpt = None,
) -> None:
    """Run (or resume) a whole pipeline: ingest, then the configured stages, then the report."""
    from aloe_core.config import load_config
    from aloe_data.commands import require_out
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.report import write_report
    from aloe_data.pipeline.runner import run_pipeline

    out = require_out(out, output)
    pipeline = load_config(PipelineConfig, config, overrides or [])
    manifest = run_pipeline(
        pipeline, out, config_source=str(config), after_stage=lambda _d, e: _echo_entry(e)
    )
    if pipeline.report:
        paths = write_report(out, manifest)
        typer.echo(f"report: {paths['html']}")


@app.command()
def ingest(
    input: Annotated[str, typer.Option("--input", "-i", help="Source file, folder or glob.")],
    out: OutOpt = None,
    output: OldOutOpt = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Layout: prompt_engine_mcqa, prompt_engine_open, medmcqa, medqa, pubmedqa, openai_chat, "
            "sharegpt, alpaca, preference (default: guessed from the first rows).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Source name recorded on rows (default: the format).")
    ] = None,
    kind: Annotated[Kind, typer.Option("--kind", help="Record kind to produce.")] = "sft",
    shard_rows: ShardOpt = 100_000,
    ray_cpus: RayCpusOpt = None,
    num_cpus: OldCpusOpt = None,
) -> None:
    """Read one source into record shards; malformed rows go to _dropped/ with file, row and reason."""
    from aloe_core.config import validate_config
    from aloe_data.commands import require_out
    from aloe_data.pipeline.config import OutputConfig, PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_data.sources import SourceConfig, sniff_format

    out = require_out(out, output)
    if format is None:
        probe = validate_config(SourceConfig, {"name": name or "source", "path": input}, "command line")
        format = sniff_format(probe)
        typer.echo(f"format: {format} (guessed from the first rows; pass --format to choose)")
    pipeline = validate_config(
        PipelineConfig,
        {
            "kind": kind,
            "sources": [{"name": name or format, "format": format, "path": input}],
            "output": OutputConfig(shard_rows=shard_rows).model_dump(),
            "ray_cpus": ray_cpus if ray_cpus is not None else num_cpus,
            "report": False,
        },
        "command line",
    )
    manifest = run_pipeline(pipeline, out)
    _echo_entry(next(iter(manifest.stages.values())))


@app.command("redteam-pairs")
def redteam_pairs(
    config: Annotated[
        Path | None, typer.Argument(help="Pairs config YAML (eval: a safety config; rejected; source).")
    ] = None,
    out: OutOpt = None,
    prompts: Annotated[
        str | None, typer.Option("--prompts", help="Prompt set YAML or Egida-style JSONL (default: shipped).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model folder whose answers to judge.")] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Judge model folder (none: classifier).")
    ] = None,
    held_out: Annotated[
        list[str] | None, typer.Option("--held-out", help="A style never to put in pairs; repeatable.")
    ] = None,
    eval_run: Annotated[
        Path | None, typer.Option("--eval-run", help="Reuse this safety run's answers and verdicts.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run models in this process, not Ray actors.")
    ] = False,
    overrides: SetOpt = None,
) -> None:
    """DPO pairs from red-teaming: chosen = a safe refusal that redirects to care, rejected = the model's
    own answer judged unsafe; `preference` rows with meta.category safety for the safety DPO stage."""
    import json

    from aloe_core.config import validate_config
    from aloe_core.errors import InputError
    from aloe_data.commands import require_out
    from aloe_data.redteam import RedteamPairsConfig, run_redteam_pairs
    from aloe_infer.safety.cli import config_data

    out = require_out(out, None)
    data, source = config_data(
        config, model=model, prompts=prompts, judge=judge, rubric=None, held_out=held_out, local=local,
        overrides=overrides, section="eval",
    )  # fmt: skip
    if eval_run is not None:
        # The run's own config says which model answered and on which prompts; options apply on top.
        saved = eval_run / "config.json"
        if not saved.is_file():
            raise InputError(f"{eval_run}: not a safety run folder (no config.json); see `aloe eval safety`")
        data["eval"] = _deep_merge(json.loads(saved.read_text(encoding="utf-8")), data["eval"])
    entry = run_redteam_pairs(validate_config(RedteamPairsConfig, data, source), out, eval_run)
    _echo_entry(entry)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        merged[key] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


@app.command()
def release(
    run_dir: Annotated[Path, typer.Argument(help="Pipeline run folder (aloe data run --out).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for this release version.")],
    name: Annotated[str, typer.Option("--name", help="Release (and Hub repo) name.")],
    version: Annotated[str, typer.Option("--version", help="Semantic version X.Y.Z.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Release YAML (see configs/release/).")
    ] = None,
    overrides: SetOpt = None,
) -> None:
    """Publish a run as a dataset release: split, Parquet shards, card, statistics, checksums, Croissant.

    A folder that holds a release is refused: a version, once written, is never overwritten. With
    hub_repo set (--set hub_repo=org/name) and HF_TOKEN in the environment it is uploaded to the Hub.
    """
    from aloe_core.config import apply_overrides, read_yaml_mapping, validate_config
    from aloe_data.release import ReleaseConfig, write_release

    data = apply_overrides(read_yaml_mapping(config) if config else {}, overrides or [])
    settings = validate_config(ReleaseConfig, data, str(config or "--set"))
    path = write_release(run_dir, out, name=name, version=version, config=settings)
    typer.echo(f"release {name} {version}: {path} (card {path / 'README.md'})")


@app.command("verify-release")
def verify_release_command(
    directory: Annotated[Path, typer.Argument(help="Release folder (aloe data release --out).")],
) -> None:
    """Check a release: every file's sha256, row counts, the card's front matter and croissant.json."""
    from aloe_data.release import verify_release

    problems = verify_release(directory)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{directory}: ok")


@app.command("push-release")
def push_release(
    directory: Annotated[Path, typer.Argument(help="Release folder (aloe data release --out).")],
    repo: Annotated[str, typer.Option("--repo", help="Hub dataset repo, org/name.")],
    public: Annotated[
        bool, typer.Option("--public", help="Create the repo public (default private).")
    ] = False,
) -> None:
    """Upload a verified release to the Hugging Face Hub (HF_TOKEN), tagged v<version>."""
    import json

    from aloe_core.errors import InputError
    from aloe_core.shards import RELEASE_MANIFEST
    from aloe_data.release import verify_release
    from aloe_data.release.hub import upload_release

    problems = verify_release(directory)
    if problems:
        raise InputError(f"{directory}: does not verify ({problems[0]}); see aloe data verify-release")
    version = json.loads((directory / RELEASE_MANIFEST).read_text(encoding="utf-8"))["version"]
    typer.echo(upload_release(directory, repo, version, private=not public))
