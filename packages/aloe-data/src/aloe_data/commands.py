"""`aloe data <stage>` commands, generated from the stages' config classes.

Every top-level field of a stage's config becomes an option with the field's type, default and
description (``Field(description=...)``), so no default or help text exists twice and a new stage gets
its command by being registered in ``STAGE_CLASSES``. Field types map to options as follows:

* ``int``, ``float``, ``str``, a ``Literal`` of strings (a choice), each optional or not: one value;
* ``bool``: a ``--x/--no-x`` flag;
* ``list`` / ``tuple`` of those: a repeatable option (``-b a -b b``);
* a nested model (``keep``, ``engine``, ``sampling``): no option of its own; set its fields with
  ``--set keep.score_key=x`` or in ``--config``, or through a shortcut the stage declares
  (``Stage.cli_shortcuts``, e.g. ``cot --model`` for ``engine.model``, with that field's default);
* anything else (a dict, ``int | [min, max]``): one YAML value (``--concurrency '[1, 4]'``).

Precedence: ``--config FILE`` (a YAML mapping of the stage's config), then the options given on the
command line (options left at their default do not override the file), then ``--set key.sub=value``.
Every command also takes ``--input/-i``, ``--out/-o``, ``--shard-rows`` and ``--ray-cpus`` (hidden old
names: ``--output``, ``--output-dir``, ``--num-cpus``).
"""

from __future__ import annotations

import enum
import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from aloe_core.storage import location

# Fields every stage config has that a command does not expose (`type` is the command; `name` only
# names a stage folder inside a run).
HIDDEN_FIELDS = ("type", "name")
_KW = inspect.Parameter.KEYWORD_ONLY


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (annotation, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) < len(get_args(annotation)) and len(args) == 1:
            return args[0], True
    return annotation, False


def _literal_enum(values: tuple[Any, ...], name: str) -> type[enum.Enum]:
    """A str Enum of a Literal's values: typer takes choices inside lists only as Enums."""
    return enum.Enum(name, {str(v): str(v) for v in values}, type=str)  # type: ignore[return-value]


_SCALARS = (int, float, str, bool)


class OptionSpec:
    """How one config field (top level, or nested through a shortcut) is offered as an option.

    ``kind`` is ``scalar`` (one typed value), ``list`` (repeatable), ``flag`` (bool) or ``yaml`` (one
    value read as YAML); ``convert`` turns what typer passes into what the config takes.
    """

    def __init__(self, path: str, field: FieldInfo, param_name: str, decls: tuple[str, ...]) -> None:
        self.path = path
        self.field = field
        self.param_name = param_name
        self.decls = decls
        self.default = _field_default(field)
        self.required = field.is_required()
        self.help = field.description or ""
        self.annotation, self.kind, self.convert = _option_type(field.annotation, param_name)

    def parameter(self) -> inspect.Parameter:
        """The typed, ``Annotated`` parameter of the generated command function."""
        default = self.default
        if self.kind == "list":
            default = None if default is None else [self.convert_default(v) for v in default]
        elif self.kind == "yaml":
            default = None if default is None else _yaml_text(default)
        elif self.kind == "scalar" and isinstance(default, enum.Enum):
            default = default.value
        # Square brackets are rich markup in typer's help; "[min, max]" must show as written.
        help_text = (self.help + (" (required)" if self.required else "")).replace("[", "\\[")
        decls = self.decls
        if self.kind == "flag":
            decls = tuple(f"{d}/--no-{d[2:]}" if d.startswith("--") else d for d in decls)
        long_default = isinstance(default, str) and len(default) > 60  # a prompt template: not in --help
        option = typer.Option(
            *decls,
            help=help_text,
            metavar="YAML" if self.kind == "yaml" else None,
            show_default=not long_default,
        )
        return inspect.Parameter(
            self.param_name, _KW, annotation=Annotated[self.annotation, option], default=default
        )

    def convert_default(self, value: Any) -> Any:
        return value.value if isinstance(value, enum.Enum) else value


def _field_default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return None
    return field.default


def _yaml_text(value: Any) -> str:
    """A default shown as YAML (JSON is YAML): ``{"mcqa": "multiple_choice"}``, ``1``."""
    import json

    return json.dumps(value)


def _read_yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text) if text.strip() else ""


def _option_type(annotation: Any, name: str) -> tuple[Any, str, Callable[[Any], Any]]:
    """(annotation for typer, kind, convert) of a field annotation; see :class:`OptionSpec`."""
    inner, optional = _strip_optional(annotation)
    wrap = (lambda t: t | None) if optional else (lambda t: t)
    if inner is bool:
        return wrap(bool), "flag", lambda v: v
    if inner in _SCALARS:
        return wrap(inner), "scalar", lambda v: v
    if get_origin(inner) is Literal and all(isinstance(v, str) for v in get_args(inner)):
        return wrap(inner), "scalar", lambda v: v
    if get_origin(inner) in (list, tuple):
        args = get_args(inner)
        element = args[0] if args and (get_origin(inner) is list or args[-1] is Ellipsis) else None
        if element in (int, float, str):
            return list[element] | None, "list", list  # type: ignore[valid-type]
        if get_origin(element) is Literal:
            choices = _literal_enum(get_args(element), f"{name}_choice")
            return list[choices] | None, "list", lambda v: [getattr(e, "value", e) for e in v]  # type: ignore[valid-type]
    return str | None, "yaml", _read_yaml


def _is_model(annotation: Any) -> bool:
    inner, _ = _strip_optional(annotation)
    return isinstance(inner, type) and issubclass(inner, BaseModel)


def _nested_field(model: type[BaseModel], path: str) -> FieldInfo:
    """The field at dotted ``path`` of ``model`` (through nested models)."""
    *parents, last = path.split(".")
    for part in parents:
        model, _ = _strip_optional(model.model_fields[part].annotation)
    return model.model_fields[last]


def option_specs(stage_cls: Any) -> list[OptionSpec]:
    """The options a stage's command offers for its config: top-level fields, then shortcuts."""
    config_class = stage_cls.config_class
    specs = []
    for name, field in config_class.model_fields.items():
        if name in HIDDEN_FIELDS or _is_model(field.annotation):
            continue
        decls = ("--" + name.replace("_", "-"), *stage_cls.cli_aliases.get(name, ()))
        specs.append(OptionSpec(name, field, name, decls))
    for short, path in stage_cls.cli_shortcuts.items():
        field = config_class.model_fields.get(short)
        if field is not None and not _is_model(field.annotation):  # `engine` may name engine.type
            raise TypeError(f"{stage_cls.__name__}: shortcut {short!r} shadows the option of a field")
        decls = ("--" + short.replace("_", "-"), *stage_cls.cli_aliases.get(short, ()))
        specs.append(OptionSpec(path, _nested_field(config_class, path), short, decls))
    return specs


def _common_parameters() -> list[inspect.Parameter]:
    """--input, --out (hidden: --output, --output-dir), --config, --set, --shard-rows, --ray-cpus."""

    def opt(name: str, annotation: Any, default: Any, *decls: str, **kw: Any) -> inspect.Parameter:
        return inspect.Parameter(
            name, _KW, annotation=Annotated[annotation, typer.Option(*decls, **kw)], default=default
        )

    return [
        opt(
            "aloe_input",
            str | None,
            None,
            "--input",
            "-i",
            help="Parquet shards: a run, a stage's or command's output folder, a folder, file or glob.",
        ),
        opt(
            "aloe_out",
            Path | None,
            None,
            "--out",
            "-o",
            parser=location,  # a URI (s3://...) stays a string; Path would mangle it
            help="Folder or s3:// / gs:// URI for part-*.parquet, _dropped/ and manifest.json.",
        ),
        opt("aloe_output", Path | None, None, "--output", "--output-dir", parser=location, hidden=True),
        opt(
            "aloe_config",
            Path | None,
            None,
            "--config",
            help="YAML of the stage's config; options override it.",
        ),
        opt(
            "aloe_set",
            list[str] | None,
            None,
            "--set",
            help="key.sub=value over --config and the options (e.g. keep.score_key=x); repeatable.",
        ),
        opt("aloe_shard_rows", int, 100_000, "--shard-rows", help="Rows per output Parquet file at most."),
        opt(
            "aloe_ray_cpus",
            int | None,
            None,
            "--ray-cpus",
            help="CPUs of the local Ray (ignored with RAY_ADDRESS).",
        ),
        opt("aloe_num_cpus", int | None, None, "--num-cpus", hidden=True),
    ]


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


def require_out(out: str | Path | None, output: str | Path | None) -> str | Path:
    """``--out`` (or its old name ``--output``), which every command that writes needs."""
    if out is None and output is None:
        raise typer.BadParameter("Missing option '--out' / '-o'.")
    return out if out is not None else output  # type: ignore[return-value]


def stage_config_data(
    stage_cls: Any, specs: list[OptionSpec], ctx: typer.Context, values: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The stage's raw config from ``--config``, the options given and ``--set``; and its source label."""
    from aloe_core.config import apply_overrides, read_yaml_mapping

    config_file, overrides = values["aloe_config"], values["aloe_set"] or []
    data = read_yaml_mapping(config_file) if config_file else {}
    for spec in specs:
        if _given(ctx, spec.param_name):
            value = values[spec.param_name]
            _set_path(data, spec.path, None if value is None else spec.convert(value))
    data = apply_overrides(data, overrides)
    data.setdefault("type", stage_cls.type_name())
    source = f"{config_file} and the command line" if config_file else "command line"
    return data, source + (f" (with --set {', '.join(overrides)})" if overrides else "")


def stage_config(stage_cls: Any, ctx: typer.Context) -> Any:
    """The validated config of a stage command invocation (``ctx``: its parsed context).

    Raises:
        ConfigError: one line per problem, naming the field and where the values came from.
    """
    from aloe_core.config import validate_config

    data, source = stage_config_data(stage_cls, option_specs(stage_cls), ctx, ctx.params)
    return validate_config(stage_cls.config_class, data, source)


def stage_command(stage_cls: Any) -> Any:
    """The click command ``aloe data <stage_cls.command_name()>``, built from its config class."""
    specs = option_specs(stage_cls)

    def command(ctx: typer.Context, **values: Any) -> None:
        from aloe_data.pipeline.config import OutputConfig
        from aloe_data.pipeline.runner import describe_entry
        from aloe_data.pipeline.single import run_stage_on_files

        out = require_out(values["aloe_out"], values["aloe_output"])
        if values["aloe_input"] is None:
            raise typer.BadParameter("Missing option '--input' / '-i'.")
        stage = stage_cls(stage_config(stage_cls, ctx))
        ray_cpus = values["aloe_ray_cpus"] if values["aloe_ray_cpus"] is not None else values["aloe_num_cpus"]
        output = OutputConfig(shard_rows=values["aloe_shard_rows"])
        entry = run_stage_on_files(stage, values["aloe_input"], out, output, ray_cpus)
        typer.echo(describe_entry(entry))

    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters + _common_parameters() + [spec.parameter() for spec in specs]
    )
    command.__doc__ = inspect.getdoc(stage_cls)
    app = typer.Typer(add_completion=False)
    app.command(stage_cls.command_name())(command)
    click_command = typer.main.get_command(app)
    click_command.aloe_options = {spec.param_name: spec for spec in specs}  # type: ignore[attr-defined]
    return click_command
