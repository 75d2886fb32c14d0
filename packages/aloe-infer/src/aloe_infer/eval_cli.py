"""`aloe eval ...`: benchmark a model (`run`), compare runs (`compare`), red-team a model (`safety`,
`safety-compare`: :mod:`aloe_infer.safety.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aloe_infer.safety.cli import safety_command, safety_compare_command

app = typer.Typer(
    help="Evaluate models: medical benchmarks (zero-shot, CoT, Medprompt), safety red-teaming.",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    config: Annotated[Path | None, typer.Argument(help="Eval config YAML (see configs/eval/).")] = None,
    # A str, not a Path: a Path would fold the // of an s3:// URI.
    out: Annotated[
        str, typer.Option("--out", "-o", help="Run folder or s3:// / gs:// URI to write.")
    ] = "eval-run",
    model: Annotated[str | None, typer.Option(help="Model folder (sets engine.model).")] = None,
    benchmarks: Annotated[
        str | None, typer.Option(help="Folder of <name>_<split>.json benchmark files.")
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="zero-shot, cot, sc-cot, medprompt, rag or rag-cot (rag ones need --set rag.index=DIR); "
            "several (repeated or comma-separated) run side by side on the same questions."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N valid questions per benchmark.")] = None,
    engine: Annotated[str | None, typer.Option(help="hf (transformers) or vllm.")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config value, e.g. --set medprompt.k=3.")
    ] = None,
) -> None:
    """Score a model on benchmarks; writes RUN/results.json, predictions.jsonl, results.md, accuracy.png
    (several strategies: RUN/<strategy>/ each, and RUN/comparison.md side by side)."""
    from aloe_core.config import apply_overrides, read_yaml_mapping, validate_config
    from aloe_infer.eval.config import EvalConfig
    from aloe_infer.eval.run import run_strategies

    data = read_yaml_mapping(config) if config is not None else {}
    names = [n.strip() for value in strategy or [] for n in value.split(",") if n.strip()]
    flags = {
        "engine.model": model,
        "benchmarks": benchmarks,
        "strategy": f"[{', '.join(names)}]" if len(names) > 1 else (names[0] if names else None),
        "limit": limit,
        "engine.type": engine,
    }
    settings = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(overrides or [])
    data = apply_overrides(data, settings)
    runs = run_strategies(validate_config(EvalConfig, data, str(config or "command line")), out)
    _print_runs(runs, out)


def _print_runs(runs: dict[str, dict], out: str) -> None:
    """Accuracy per benchmark and aggregate, one column per strategy."""
    rows: dict[str, list[str]] = {}
    for results in runs.values():
        for name, s in results["benchmarks"].items():
            low, high = s["ci95"]
            cell = f"{s['accuracy']:.4f} [{low:.3f}, {high:.3f}] n={s['n']}"
            rows.setdefault(name, []).append(cell)
        for name, a in results["aggregates"].items():
            rows.setdefault(name, []).append(f"{a['accuracy']:.4f}")
    if len(runs) > 1:
        typer.echo((f"{'':>12}  " + "  ".join(f"{s:<30}" for s in runs)).rstrip())
    for name, cells in rows.items():
        typer.echo(f"{name:>12}: " + "  ".join(f"{c:<30}" for c in cells).rstrip())
    from aloe_core.storage import join

    typer.echo(f"results: {join(out, 'comparison.md' if len(runs) > 1 else 'results.json')}")


@app.command("compare")
def compare_command(
    runs: Annotated[
        list[str], typer.Argument(help="Two or more eval run folders or URIs; the first is the base.")
    ],
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Folder or URI for comparison.md/json and the chart.")
    ] = None,
) -> None:
    """Side-by-side accuracies and paired McNemar tests of each run against the first."""
    from aloe_infer.eval.compare import compare_runs, markdown

    typer.echo(markdown(compare_runs(runs, out)), nl=False)


app.command("safety")(safety_command)
app.command("safety-compare")(safety_compare_command)
