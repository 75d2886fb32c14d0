"""The generated `aloe data <stage>` commands: one default per field (the config's), `--set` and
`--config` reaching nested fields, the shortcut and old option names; no Ray needed."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest
import yaml

from aloe_core.errors import ConfigError
from aloe_data.cli import DataGroup
from aloe_data.commands import HIDDEN_FIELDS, option_specs, stage_command, stage_config
from aloe_data.stages import STAGE_CLASSES

COMMANDS = {cls.command_name(): cls for cls in STAGE_CLASSES}
# Fields a command must be given (no default): enough to validate a config of each stage.
REQUIRED = {
    "decontaminate": ["--benchmarks", "bench.jsonl"],
    "score": ["--complexity-model", "models/scorer"],
    "cot": ["--model", "models/teacher"],
}


def parse(command_name: str, *args: str):
    """The stage config an invocation of ``aloe data <command_name> ARGS`` would run with."""
    cls = COMMANDS[command_name]
    command = stage_command(cls)
    ctx = command.make_context(
        command_name, ["-i", "in", "-o", "out", *REQUIRED.get(command_name, []), *args]
    )
    return stage_config(cls, ctx)


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def test_every_stage_has_a_command_named_by_its_class():
    assert list(COMMANDS) == [
        "clean",
        "exact-dedup",
        "dedup",
        "decontaminate",
        "score",
        "select",
        "template",
        "cot",
    ]


@pytest.mark.parametrize("command_name", list(COMMANDS))
def test_every_option_default_is_the_config_default(command_name):
    cls = COMMANDS[command_name]
    command = stage_command(cls)
    params = {p.name: p for p in command.params}
    fields = cls.config_class.model_fields
    exposed = [n for n, f in fields.items() if n not in HIDDEN_FIELDS]
    specs = {s.path: s for s in option_specs(cls)}  # top-level fields: path == field name
    for name in exposed:
        field = fields[name]
        if name not in specs:  # a nested model: --set / --config only
            assert hasattr(field.annotation, "model_fields"), name
            continue
        expected = field.get_default(call_default_factory=True)
        expected = None if field.is_required() else expected
        option_default = params[name].default
        if specs[name].kind == "yaml" and option_default is not None:
            option_default = yaml.safe_load(option_default)
        if isinstance(expected, tuple):
            expected = list(expected)
        assert _plain(option_default) == _plain(expected), (command_name, name)
        assert params[name].help.startswith(field.description.replace("[", "\\[")), (command_name, name)
    # Shortcuts into nested models take the nested field's default.
    for short, path in cls.cli_shortcuts.items():
        head, tail = path.split(".")
        nested = fields[head].annotation.model_fields[tail]
        assert params[short].default == (None if nested.is_required() else nested.default), short
    # Without options, the parsed config equals the config class's own defaults.
    config = parse(command_name)
    assert config == cls.config_class.model_validate(config.model_dump(exclude_unset=True))


def test_cot_engine_defaults_to_the_engine_configs_default():
    from aloe_infer.engine import EngineConfig

    params = {p.name: p for p in stage_command(COMMANDS["cot"]).params}
    assert params["engine"].default == EngineConfig.model_fields["type"].default == "hf"
    config = parse("cot")
    assert config.engine.type == "hf" and config.engine.model == "models/teacher"
    assert parse("cot", "--engine", "vllm").engine.type == "vllm"


def test_set_reaches_nested_fields():
    assert parse("dedup", "--set", "keep.score_key=x").keep.score_key == "x"
    assert parse("dedup", "--score-key", "y").keep.score_key == "y"
    config = parse("cot", "--set", "sampling.max_tokens=7", "--set", "engine.dtype=float32")
    assert config.sampling.max_tokens == 7 and config.engine.dtype == "float32"
    assert parse("dedup", "--threshold", "0.85").threshold == 0.85


def test_options_types_lists_flags_and_aliases():
    clean = parse(
        "clean", "--languages", "en", "--languages", "es", "--pii-kinds", "email", "--no-normalize-whitespace"
    )
    assert (
        clean.languages == ("en", "es") and clean.pii_kinds == ("email",) and not clean.normalize_whitespace
    )
    template = parse(
        "template", "-t", "mine.yaml", "--templates", "more.yaml", "--no-builtin", "--share", "0.5"
    )
    assert (
        template.template_files == ["mine.yaml", "more.yaml"]
        and not template.builtin
        and template.share == 0.5
    )
    decon = parse("decontaminate", "-b", "other.jsonl")
    assert decon.benchmarks == ["bench.jsonl", "other.jsonl"]
    cot = parse("cot", "--cpus-per-actor", "0.5", "--concurrency", "[1, 3]")
    assert cot.cpus_per_actor == 0.5 and cot.concurrency == (1, 3)
    assert parse("score", "--engine", "vllm", "--min-score", "2").min_score == 2.0


def test_config_file_then_options_then_set(tmp_path: Path):
    config = tmp_path / "dedup.yaml"
    config.write_text("threshold: 0.7\nnum_perm: 64\nkeep: {score_key: from_file}\n")
    parsed = parse("dedup", "--config", str(config))
    assert (parsed.threshold, parsed.num_perm, parsed.keep.score_key) == (0.7, 64, "from_file")
    parsed = parse("dedup", "--config", str(config), "--threshold", "0.9", "--set", "num_perm=32")
    assert (parsed.threshold, parsed.num_perm, parsed.keep.score_key) == (0.9, 32, "from_file")
    # A stage entry copied from a pipeline YAML (with its type) works too.
    entry = tmp_path / "clean.yaml"
    entry.write_text("type: clean\nmax_chars: 500\n")
    assert parse("clean", "--config", str(entry)).max_chars == 500


def test_bad_values_name_the_field():
    with pytest.raises(ConfigError, match=r"command line: threshold: must be <= 1"):
        parse("dedup", "--threshold", "1.5")
    with pytest.raises(ConfigError, match=r"command line \(with --set keep.nope=1\): keep.nope: unknown key"):
        parse("dedup", "--set", "keep.nope=1")


def test_old_names_are_hidden_aliases():
    command = stage_command(COMMANDS["clean"])
    ctx = command.make_context("clean", ["--input", "in", "--output", "out", "--num-cpus", "2"])
    assert ctx.params["aloe_output"] == Path("out") and ctx.params["aloe_num_cpus"] == 2
    hidden = {p.name for p in command.params if getattr(p, "hidden", False)}
    assert {"aloe_output", "aloe_num_cpus"} <= hidden


def test_data_group_lists_run_ingest_then_every_stage():
    import typer

    from aloe_data.cli import app

    group = typer.main.get_group(app)
    assert isinstance(group, DataGroup)
    names = group.list_commands(None)
    assert names[:2] == ["run", "ingest"] and names[2 : 2 + len(COMMANDS)] == list(COMMANDS)
