"""Typed configuration loaded from YAML.

Every config class derives from :class:`StrictModel`, so unknown keys are rejected (a typo in a YAML
key must not be silently ignored), and :func:`load_config` turns pydantic's errors into one line per
problem that names the file and the dotted field path, e.g.
``configs/x.yaml: stages.dedup.threshold: must be <= 1``.

:func:`apply_overrides` gives every command torchtune-style ``--set key.sub=value`` overrides over its
YAML (or over a stage's defaults), so a nested setting never needs its own option.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty for an empty file).

    Raises:
        ConfigError: the file is missing, is not valid UTF-8 YAML, or its top level is not a mapping.
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
    return data


def load_config(model: type[ModelT], path: str | Path, overrides: Sequence[str] = ()) -> ModelT:
    """Read a YAML file into ``model``, with ``key.sub=value`` ``overrides`` applied first.

    Raises:
        ConfigError: the file is missing, is not valid YAML, an override is malformed, or the result
            does not match ``model``.
    """
    data = apply_overrides(read_yaml_mapping(path), overrides)
    source = f"{path} (with --set {', '.join(overrides)})" if overrides else str(path)
    return validate_config(model, data, source)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"stages.dedup.threshold=0.85"`` -> ``(["stages", "dedup", "threshold"], 0.85)``.

    The value is read as YAML, so ``0.8`` is a float, ``true`` a bool, ``null`` None, ``[en, es]`` a list
    and anything else a string.

    Raises:
        ConfigError: no ``=``, or an empty key.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {text!r}: expected key.sub=value (e.g. keep.score_key=deita.score)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key.sub=value`` override set, creating mappings on the way.

    In a list, a part is an index (``stages.1.threshold``) or the ``name`` or ``type`` of an item
    (``stages.fuzzy_dedup.threshold``), so pipeline stages can be addressed by what they are.

    Raises:
        ConfigError: a path runs through a scalar or names no list item.
    """
    result = json.loads(json.dumps(data)) if overrides else data
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = result
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                index = _list_index(node, part, text, where)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"--set {text!r}: {where} is inside a value, not a mapping")
    return result


def _list_index(items: list[Any], part: str, text: str, where: str) -> int:
    if part.lstrip("-").isdigit() and -len(items) <= int(part) < len(items):
        return int(part)
    for attr in ("name", "type"):
        matches = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get(attr) == part]
        if len(matches) == 1:
            return matches[0]
    names = [
        str(item.get("name") or item.get("type")) if isinstance(item, dict) else str(i)
        for i, item in enumerate(items)
    ]
    raise ConfigError(
        f"--set {text!r}: {where} names no single item of the list "
        f"(index 0-{len(items) - 1} or one of {names})"
    )


def config_hash(config: BaseModel | dict[str, Any]) -> str:
    """A stable short hash of a config's content, used to decide whether a finished stage is stale."""
    data = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
