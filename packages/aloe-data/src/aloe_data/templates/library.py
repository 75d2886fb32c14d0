"""Prompt templates as data: YAML files holding Jinja templates, loaded into a :class:`TemplateLibrary`.

A template file looks like this (every shipped file in this folder is one; users add their own the same
way and name them in a stage config's ``template_files``)::

    family: multiple_choice          # which rows the templates are for
    templates:
      - id: mc-exam                  # unique across every loaded file; recorded in meta.template.id
        description: exam-style instruction before the question
        weight: 1.0                  # relative chance of being picked among the family (default 1)
        system: null                 # optional: replaces (or adds) the system message
        user: |                      # required: the new user message
          Answer the following exam question.
          {{ question }}
          {% for o in options %}{{ o.letter }}. {{ o.text }}
          {% endfor %}
        assistant: null              # optional: replaces the answer (e.g. a letter-only answer)

Variables (see :func:`row_variables`): every row has ``input`` (its last user message), ``output`` (its
last assistant message), ``system`` (or None), ``task`` and ``id``; rows with an MCQA item also have
``question``, ``options`` (list of ``{letter, text}``), ``context`` (or None), ``answer`` (the letter),
``answer_text`` and ``explanation`` (or None). The ``cot`` family (prompts for chain-of-thought
generation) also gets ``answer_prefix``. MCQA families are ``multiple_choice``, ``yes_no_maybe`` and
``cot``; any other family name is a free-text family whose templates may use only the every-row
variables.

Rendering uses a sandboxed Jinja environment with ``StrictUndefined`` (a misspelt variable is an error,
not an empty string), ``trim_blocks`` and ``lstrip_blocks``; the result is stripped. Every template is
rendered once at load time against a sample row of its family, so a broken template fails when the
config is loaded, naming the file and template id, not halfway through a run.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from aloe_core.config import StrictModel, validate_config
from aloe_core.errors import ConfigError

BUILTIN_DIR = Path(__file__).resolve().parent
MCQA_FAMILIES = frozenset({"multiple_choice", "yes_no_maybe", "cot"})
ROW_VARIABLES = ("input", "output", "system", "task", "id")
MCQA_VARIABLES = ("question", "options", "context", "answer", "answer_text", "explanation")


class TemplateSpec(StrictModel):
    """One template as written in a file."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    weight: float = Field(1.0, gt=0)
    system: str | None = None
    user: str = Field(min_length=1)
    assistant: str | None = None


class TemplateFile(StrictModel):
    """A template file: one family and its templates."""

    family: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    templates: list[TemplateSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Rendered:
    """A template applied to one row: the messages it replaces (None = keep the row's own)."""

    system: str | None
    user: str
    assistant: str | None


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template. Holds source text only (picklable); compiled Jinja is cached per process."""

    id: str
    family: str
    user: str
    system: str | None = None
    assistant: str | None = None
    weight: float = 1.0
    description: str = ""
    source: str = ""  # the file it came from

    def render(self, variables: Mapping[str, Any]) -> Rendered:
        """Render for one row's variables.

        Raises:
            jinja2.TemplateError: a variable the template uses is missing (callers add the row id).
        """
        system = _compiled(self.system).render(variables).strip() if self.system is not None else None
        assistant = (
            _compiled(self.assistant).render(variables).strip() if self.assistant is not None else None
        )
        return Rendered(system, _compiled(self.user).render(variables).strip(), assistant)


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Any:
    return _environment().from_string(source)


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
    )


def row_variables(row: Mapping[str, Any]) -> dict[str, Any]:
    """The template variables of an sft row (see the module docstring)."""
    messages = list(row.get("messages") or [])
    by_role: dict[str, list[str]] = {"system": [], "user": [], "assistant": []}
    for message in messages:
        by_role.setdefault(message["role"], []).append(message["content"])
    variables: dict[str, Any] = {
        "input": by_role["user"][-1] if by_role["user"] else "",
        "output": by_role["assistant"][-1] if by_role["assistant"] else "",
        "system": by_role["system"][0] if by_role["system"] else None,
        "task": row.get("task"),
        "id": row.get("id"),
    }
    item = row.get("mcqa")
    if item is not None:
        options = [{"letter": o["letter"], "text": o["text"]} for o in item["options"]]
        variables.update(
            question=item["question"],
            options=options,
            context=item.get("context"),
            answer=item["answer"],
            answer_text=next((o["text"] for o in options if o["letter"] == item["answer"]), ""),
            explanation=item.get("explanation"),
        )
    return variables


def _sample_variables(family: str) -> dict[str, Any]:
    """A plausible row of ``family`` for the load-time dry run (every variable the family has)."""
    variables: dict[str, Any] = {
        "input": "Summarise the mechanism of action of metformin.",
        "output": "Metformin lowers hepatic glucose production.",
        "system": None,
        "task": family,
        "id": "sample",
    }
    if family in MCQA_FAMILIES:
        variables.update(
            question="Which drug is first-line for type 2 diabetes?",
            options=[{"letter": "A", "text": "Metformin"}, {"letter": "B", "text": "Insulin"}],
            context="Guidelines recommend metformin first.",
            answer="A",
            answer_text="Metformin",
            explanation="It is effective, safe and cheap.",
            answer_prefix="Answer:",
        )
    return variables


class TemplateLibrary:
    """Templates by id, loaded from YAML files (the shipped ones and/or the user's)."""

    def __init__(self, templates: Iterable[PromptTemplate], digest: str = "") -> None:
        self.templates: dict[str, PromptTemplate] = {}
        for template in templates:
            if template.id in self.templates:
                first = self.templates[template.id].source
                raise ConfigError(
                    f"{template.source}: template id {template.id!r} is already defined in {first}; "
                    "template ids must be unique (rename one)"
                )
            self.templates[template.id] = template
        self.digest = digest

    @classmethod
    def load(cls, paths: Sequence[str | Path] = (), *, builtin: bool = True) -> TemplateLibrary:
        """The shipped templates (unless ``builtin`` is false) plus every YAML file in ``paths``
        (files, or folders whose ``*.yaml`` files are read).

        Raises:
            ConfigError: a file is missing, is not valid YAML or not a template file, a template does not
                compile or render on a sample row, or two templates share an id; the message names the
                file and the template.
        """
        files = sorted(BUILTIN_DIR.glob("*.yaml")) if builtin else []
        for path in map(Path, paths):
            if path.is_dir():
                files += sorted(path.glob("*.yaml"))
            elif path.is_file():
                files.append(path)
            else:
                raise ConfigError(f"{path}: template file or folder not found")
        digest = hashlib.sha256()
        templates: list[PromptTemplate] = []
        for path in files:
            text = path.read_text(encoding="utf-8")
            digest.update(text.encode("utf-8") + b"\x1f")
            templates += _parse_file(path, text)
        return cls(templates, digest.hexdigest()[:16])

    def get(self, template_id: str) -> PromptTemplate:
        """The template ``template_id``; raises ConfigError listing the known ids."""
        try:
            return self.templates[template_id]
        except KeyError:
            raise ConfigError(
                f"unknown template id {template_id!r}; known: {sorted(self.templates)}"
            ) from None

    def family(self, name: str) -> list[PromptTemplate]:
        """The templates of family ``name``, sorted by id (the order assignment relies on)."""
        return sorted((t for t in self.templates.values() if t.family == name), key=lambda t: t.id)


def _parse_file(path: Path, text: str) -> list[PromptTemplate]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    spec = validate_config(TemplateFile, data, str(path))
    templates = []
    for index, t in enumerate(spec.templates):
        template = PromptTemplate(
            id=t.id,
            family=spec.family,
            user=t.user,
            system=t.system,
            assistant=t.assistant,
            weight=t.weight,
            description=t.description,
            source=str(path),
        )
        _check(template, f"{path}: templates[{index}] ({t.id})")
        templates.append(template)
    return templates


def _check(template: PromptTemplate, where: str) -> None:
    """Compile and dry-render ``template``; raise ConfigError naming ``where`` on any problem."""
    from jinja2 import TemplateError, TemplateSyntaxError

    for part in ("user", "system", "assistant"):
        source = getattr(template, part)
        if source is None:
            continue
        try:
            _compiled(source)
        except TemplateSyntaxError as exc:
            raise ConfigError(
                f"{where}.{part}: Jinja syntax error on line {exc.lineno}: {exc.message}"
            ) from None
    variables = _sample_variables(template.family)
    try:
        rendered = template.render(variables)
    except TemplateError as exc:
        raise ConfigError(
            f"{where}: does not render for a {template.family} row: {exc}; variables of this family: "
            f"{sorted(variables)}"
        ) from None
    if not rendered.user:
        raise ConfigError(f"{where}.user: renders to an empty message")
