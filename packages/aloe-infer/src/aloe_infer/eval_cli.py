"""`aloe eval ...`: benchmark a model (`run`), compare runs (`compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Evaluate models: medical benchmarks (zero-shot, CoT, Medprompt).", no_args_is_help=True
)


@app.command("run")
def run_command(
    config: Annotated[Path | None, typer.Argument(help="Eval config YAML (see configs/eval/).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")] = Path("eval-run"),
    model: Annotated[str | None, typer.Option(help="Model folder (sets engine.model).")] = None,
    benchmarks: Annotated[
        str | None, typer.Option(help="Folder of <name>_<split>.json benchmark files.")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="zero-shot, cot, sc-cot or medprompt.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N valid questions per benchmark.")] = None,
    engine: Annotated[str | None, typer.Option(help="hf (transformers) or vllm.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config value, e.g. --set medprompt.k=3.")
    ] = None,
) -> None:
    """Score a model on benchmarks; writes RUN/results.json, predictions.jsonl, results.md, accuracy.png."""
    from aloe_core.config import apply_overrides, read_yaml_mapping, validate_config
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.eval.run import run_eval

    data = read_yaml_mapping(config) if config is not None else {}
    flags = {
        "engine.model": model,
        "benchmarks": benchmarks,
        "strategy": strategy,
        "limit": limit,
        "engine.type": engine,
    }
    settings = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(overrides or [])
    data = apply_overrides(data, settings)
    results = run_eval(validate_config(EvalConfig, data, str(config or "command line")), out)
    for name, s in results["benchmarks"].items():
        low, high = s["ci95"]
        typer.echo(f"{name:>12}: {s['accuracy']:.4f} [{low:.3f}, {high:.3f}] n={s['n']}")
    for name, a in results["aggregates"].items():
        typer.echo(f"{name:>12}: {a['accuracy']:.4f}")
    typer.echo(f"results: {out / 'results.json'}")


@app.command("compare")
def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Two or more eval run folders; the first is the base.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for comparison.md/json and the chart.")
    ] = None,
) -> None:
    """Side-by-side accuracies and paired McNemar tests of each run against the first."""
    from aloe_infer.eval.compare import compare_runs, markdown

    typer.echo(markdown(compare_runs(runs, out)), nl=False)
