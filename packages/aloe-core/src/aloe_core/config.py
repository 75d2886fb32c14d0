"""Typed configuration loaded from YAML.

Every config class derives from :class:`StrictModel`, so unknown keys are rejected (a typo in a YAML
key must not be silently ignored), and :func:`load_config` turns pydantic's errors into one line per
problem that names the file and the dotted field path, e.g.
``configs/x.yaml: stages.dedup.threshold: must be <= 1``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from aloe_core.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for all aloe configs: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            # Discriminated unions insert the tag name into the location; it is not a key the user wrote.
            if parts and str(item).startswith("function-"):
                continue
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _short_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the documented config)"
    if kind == "missing":
        return "required field is missing"
    for bound, word in (("le", "<="), ("lt", "<"), ("ge", ">="), ("gt", ">")):
        if bound in ctx and kind.endswith(
            ("less_than_equal", "less_than", "greater_than_equal", "greater_than")
        ):
            return f"must be {word} {ctx[bound]}"
    return str(error.get("msg", "invalid value"))


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One `source: field.path: message` line per problem."""
    lines = [f"{source}: {_field_path(tuple(err['loc']))}: {_short_message(err)}" for err in exc.errors()]
    return "\n".join(lines)


def validate_config(model: type[ModelT], data: Any, source: str = "<config>") -> ModelT:
    """Validate already-parsed data, raising :class:`ConfigError` with field paths on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_config(model: type[ModelT], path: str | Path) -> ModelT:
    """Read a YAML file into ``model``.

    Raises:
        ConfigError: the file is missing, is not valid YAML, or does not match ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return validate_config(model, data, str(path))


def config_hash(config: BaseModel | dict[str, Any]) -> str:
    """A stable short hash of a config's content, used to decide whether a finished stage is stale."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
