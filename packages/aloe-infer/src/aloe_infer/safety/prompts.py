"""The red-teaming prompt set: harmful requests by topic, expanded with jailbreak style templates.

Two file layouts read into the same :class:`SafetyPrompt` rows:

* **YAML** (the shipped ``data/medical.yaml``, or your own in that shape): ``topics`` maps a topic to
  its ``requests`` (and optional ``safe_responses``, the chosen answers of DPO pairs); ``styles`` maps
  a style name to a template holding one ``{request}``; every request x every style is a prompt.
* **JSONL** in Egida's shape: one ``{"topic", "style", "prompt"}`` object per line (optional ``id``
  and ``request``, the harmful request before the style was applied; ``topic`` may be a list, its
  first label counts), or a ``.json`` file holding an array of them; read as written, no expansion.

Prompt ids are content-derived (topic, style, prompt text), so two runs over the same set pair up
prompt by prompt (:mod:`aloe_infer.safety.report`'s comparison) whatever the file order.

``held_out_styles`` names styles that training must never see: the eval still runs them (they measure
generalisation to unseen jailbreaks), and :func:`training_prompts` drops them; naming a style the set
does not have is an error (a typo would silently hold out nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import Field

from aloe_core.config import StrictModel, read_yaml_mapping
from aloe_core.errors import InputError
from aloe_core.schemas import stable_id

PLACEHOLDER = "{request}"


def default_prompt_file() -> Path:
    """The prompt set shipped in the package (12 medical topics x 10 styles)."""
    return Path(str(files("aloe_infer.safety") / "data" / "medical.yaml"))


class PromptSetConfig(StrictModel):
    """Which prompts a safety eval (or a pairs run) uses."""

    path: str | None = None  # YAML or Egida-style JSONL; None: the shipped medical set
    topics: list[str] | None = None  # keep only these topics (None: all)
    styles: list[str] | None = None  # keep only these styles (None: all)
    held_out_styles: list[str] = Field(default_factory=list)  # evaluated, never in training pairs
    requests_per_topic: int | None = Field(None, ge=1)  # the first N requests of each topic (smoke runs)


@dataclass(frozen=True)
class SafetyPrompt:
    """One prompt: a harmful ``request`` of ``topic`` wrapped in jailbreak ``style``."""

    id: str
    topic: str
    style: str
    request: str  # the harmful request alone (what the judges grade against)
    prompt: str  # what the model is sent
    held_out: bool = False


@dataclass(frozen=True)
class PromptSet:
    """The prompts, and the safe (refuse and redirect) answers per topic for DPO pairs."""

    prompts: list[SafetyPrompt]
    safe_responses: dict[str, list[str]]  # topic -> answers; "" -> the defaults for other topics
    source: str

    def safe_responses_for(self, topic: str) -> list[str]:
        return self.safe_responses.get(topic) or self.safe_responses[""]


# Used when a set brings no safe responses of its own (an Egida JSONL): refuse, then redirect to care.
FALLBACK_SAFE_RESPONSES = (
    "I can't help with that, because it could seriously hurt someone. If you or someone else is in "
    "danger, please contact your local emergency number. For questions about medicines or your health, "
    "a doctor, nurse or pharmacist can give you safe, personal advice.",
)


def prompt_id(topic: str, style: str, prompt: str) -> str:
    return stable_id("safety-prompt", topic, style, prompt)[:16]


def load_prompt_set(config: PromptSetConfig) -> PromptSet:
    """The prompts ``config`` selects, in file order (topic by topic, request by request, style by style).

    Raises:
        InputError: the file is missing or malformed (naming file, line or key, and field), a selected
            topic or style does not exist, or nothing is left after selection.
    """
    path = Path(config.path) if config.path else default_prompt_file()
    if not path.is_file():
        raise InputError(f"{path}: prompt set not found (a .yaml/.yml set or an Egida-style .jsonl)")
    if path.suffix in (".jsonl", ".json"):
        prompts, safe = _read_jsonl(path), {}
    else:
        prompts, safe = _read_yaml(path, config.requests_per_topic)
    _check_unique(prompts, path)
    safe.setdefault("", list(FALLBACK_SAFE_RESPONSES))
    prompts = _select(prompts, config, path)
    return PromptSet(prompts, safe, str(path))


def training_prompts(prompts: Sequence[SafetyPrompt]) -> list[SafetyPrompt]:
    """The prompts training may see: every prompt of a style that is not held out."""
    return [p for p in prompts if not p.held_out]


def _select(prompts: list[SafetyPrompt], config: PromptSetConfig, path: Path) -> list[SafetyPrompt]:
    topics = {p.topic for p in prompts}
    styles = {p.style for p in prompts}
    for field, wanted, known in (
        ("topics", config.topics, topics),
        ("styles", config.styles, styles),
        ("held_out_styles", config.held_out_styles, styles),
    ):
        unknown = sorted(set(wanted or ()) - known)
        if unknown:
            raise InputError(f"{path}: {field}: {unknown} not in the prompt set (it has {sorted(known)})")
    held = set(config.held_out_styles)
    kept = [
        SafetyPrompt(p.id, p.topic, p.style, p.request, p.prompt, p.style in held)
        for p in prompts
        if (config.topics is None or p.topic in config.topics)
        and (config.styles is None or p.style in config.styles)
    ]
    if config.requests_per_topic is not None and path.suffix in (".jsonl", ".json"):
        kept = _first_requests(kept, config.requests_per_topic)
    if not kept:
        raise InputError(f"{path}: no prompt left after selecting topics and styles")
    return kept


def _first_requests(prompts: list[SafetyPrompt], n: int) -> list[SafetyPrompt]:
    seen: dict[str, list[str]] = {}
    out = []
    for p in prompts:
        requests = seen.setdefault(p.topic, [])
        if p.request not in requests and len(requests) < n:
            requests.append(p.request)
        if p.request in requests:
            out.append(p)
    return out


def _read_yaml(path: Path, requests_per_topic: int | None) -> tuple[list[SafetyPrompt], dict[str, list[str]]]:
    data = read_yaml_mapping(path)
    topics = _mapping(data, "topics", path)
    styles = _mapping(data, "styles", path)
    for name, template in styles.items():
        if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
            raise InputError(f"{path}: styles.{name}: must be a string with exactly one {PLACEHOLDER}")
    safe: dict[str, list[str]] = {}
    if "default_safe_responses" in data:
        safe[""] = _strings(data["default_safe_responses"], "default_safe_responses", path)
    prompts = []
    for topic, spec in topics.items():
        if not isinstance(spec, Mapping):
            raise InputError(f"{path}: topics.{topic}: must be a mapping with `requests`")
        requests = _strings(spec.get("requests"), f"topics.{topic}.requests", path)
        if "safe_responses" in spec:
            safe[str(topic)] = _strings(spec["safe_responses"], f"topics.{topic}.safe_responses", path)
        for request in requests[:requests_per_topic]:
            for style, template in styles.items():
                text = template.replace(PLACEHOLDER, request.strip())
                prompts.append(
                    SafetyPrompt(prompt_id(topic, style, text), str(topic), str(style), request.strip(), text)
                )
    return prompts, safe


def _mapping(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping) or not value:
        raise InputError(f"{path}: {key}: required, a non-empty mapping")
    return value


def _strings(value: Any, field: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{path}: {field}: must be a non-empty list of non-empty strings")
    return [v.strip() for v in value]


def _json_rows(path: Path) -> list[tuple[str, Any]]:
    """``(where, row)`` per row of a JSON-lines file, or of a ``.json`` file holding one array."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return [(f"{path}: row {i}", row) for i, row in enumerate(rows)]
    out = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((f"{path}:{line_no}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    return out


def _read_jsonl(path: Path) -> list[SafetyPrompt]:
    """Egida-style rows. ``topic`` may be a list (Egida labels some requests with several topics): the
    first is the row's topic."""
    prompts = []
    for where, row in _json_rows(path):
        if not isinstance(row, dict):
            raise InputError(f"{where}: must be a JSON object with topic, style and prompt")
        if isinstance(row.get("topic"), list) and row["topic"]:
            row = {**row, "topic": row["topic"][0]}
        for field in ("topic", "style", "prompt"):
            if not isinstance(row.get(field), str) or not row[field].strip():
                raise InputError(f"{where}: {field}: required, a non-empty string")
        request = row.get("request")
        if request is not None and not (isinstance(request, str) and request.strip()):
            raise InputError(f"{where}: request: must be a non-empty string when given")
        topic, style, text = row["topic"].strip(), row["style"].strip(), row["prompt"]
        pid = str(row["id"]) if row.get("id") is not None else prompt_id(topic, style, text)
        prompts.append(SafetyPrompt(pid, topic, style, (request or text).strip(), text))
    return prompts


def _check_unique(prompts: list[SafetyPrompt], path: Path) -> None:
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise InputError(
                f"{path}: prompt id {p.id!r} (topic {p.topic}, style {p.style}) appears twice; ids pair "
                "runs up, so each prompt must be unique"
            )
        seen.add(p.id)
