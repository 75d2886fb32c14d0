"""`aloe eval safety` and `aloe eval safety-compare`: the command functions (mounted by ``eval_cli``).

A config comes from ``CONFIG`` (YAML of :class:`~aloe_infer.safety.run.SafetyConfig`) or from the
shortcut options alone (``--model PATH`` at least); options given override the YAML, and ``--set
key.sub=value`` overrides both. Commands print rates and counts, never a prompt's answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigArg = Annotated[
    Path | None, typer.Argument(help="Safety config YAML (see configs/eval/); or use --model and --prompts.")
]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model folder to red-team (model.model).")]
PromptsOpt = Annotated[
    str | None,
    typer.Option(
        "--prompts", help="Prompt set: YAML or Egida-style JSONL (default: the shipped medical set)."
    ),
]
JudgeOpt = Annotated[
    str | None,
    typer.Option("--judge", help="Judge model folder (judge.engine.model); none: classifier only."),
]
RubricOpt = Annotated[str | None, typer.Option("--rubric", help="Judge rubric: strongreject or harmbench.")]
HeldOutOpt = Annotated[
    list[str] | None, typer.Option("--held-out", help="A style training must never see; repeatable.")
]
LocalOpt = Annotated[bool, typer.Option("--local", help="Run models in this process instead of Ray actors.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="key.sub=value over the config (e.g. generation.max_tokens=128); repeatable."),
]


def config_data(
    config: Path | None,
    *,
    model: str | None,
    prompts: str | None,
    judge: str | None,
    rubric: str | None,
    held_out: list[str] | None,
    local: bool,
    overrides: list[str] | None,
    section: str | None = None,
) -> tuple[dict[str, Any], str]:
    """The config mapping from YAML, shortcut options and ``--set`` (in that order), and its source.

    ``section``: where the eval settings sit in a larger config (``eval`` in a redteam-pairs config).
    """
    from aloe_core.config import apply_overrides, read_yaml_mapping

    data = read_yaml_mapping(config) if config is not None else {}
    node = data.setdefault(section, {}) if section else data
    shortcuts = {
        "model.model": model,
        "prompts.path": prompts,
        "judge.engine.model": judge,
        "judge.rubric": rubric,
        "prompts.held_out_styles": held_out or None,
        "pool.mode": "local" if local else None,
    }
    for key, value in shortcuts.items():
        if value is None:
            continue
        *parents, last = key.split(".")
        target = node
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[last] = value
    source = str(config) if config is not None else "command line"
    return apply_overrides(data, overrides or []), source


def safety_command(
    config: ConfigArg = None,
    out: Annotated[  # a str: a Path would fold the // of an s3:// URI
        str | None, typer.Option("--out", "-o", help="Run folder or s3:// / gs:// URI to write.")
    ] = None,
    model: ModelOpt = None,
    prompts: PromptsOpt = None,
    judge: JudgeOpt = None,
    rubric: RubricOpt = None,
    held_out: HeldOutOpt = None,
    local: LocalOpt = False,
    overrides: SetOpt = None,
) -> None:
    """Red-team a model: ASR per topic and jailbreak style, judged by an LLM rubric and a refusal classifier.

    Writes RUN/predictions.jsonl (prompts, answers and verdicts; readable by you only), results.json and
    heatmap.png. Compare two runs with `aloe eval safety-compare BEFORE AFTER --out DIR`.
    """
    from aloe_core.config import validate_config
    from aloe_core.errors import ConfigError
    from aloe_core.storage import join
    from aloe_infer.safety.report import summary_lines
    from aloe_infer.safety.run import SafetyConfig, run_safety_eval

    if out is None:
        raise ConfigError("--out: required (the run folder)")
    data, source = config_data(
        config, model=model, prompts=prompts, judge=judge, rubric=rubric, held_out=held_out, local=local,
        overrides=overrides,
    )  # fmt: skip
    report = run_safety_eval(validate_config(SafetyConfig, data, source), out)
    for line in summary_lines(report):
        typer.echo(line)
    typer.echo(f"report: {join(out, 'results.json')}; heatmap: {join(out, 'heatmap.png')}")


def safety_compare_command(
    before: Annotated[
        str, typer.Argument(help="Safety run folder or URI before (e.g. before the safety stage).")
    ],
    after: Annotated[str, typer.Argument(help="Safety run folder or URI after, on the same prompts.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder or URI for compare.json/.md/.png.")],
) -> None:
    """Compare two safety runs prompt by prompt: ASR before and after, per style, exact McNemar test."""
    from aloe_core.storage import join
    from aloe_infer.safety.report import compare_runs, format_rate

    result = compare_runs(before, after, out)
    typer.echo(
        f"ASR {format_rate(result['asr_before'])} -> {format_rate(result['asr_after'])} "
        f"({result['paired']} paired; {result['fixed']} fixed, {result['regressed']} regressed; "
        f"McNemar p = {result['mcnemar_p']:.3g}); {join(out, 'compare.md')}"
    )
