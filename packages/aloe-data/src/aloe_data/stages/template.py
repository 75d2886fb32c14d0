"""Prompt templating: rewrite a share of the rows' user turns with templates from a library, so a model
trained on them sees the same task asked many ways.

Which rows: each sft row gets a *family* from its content: an MCQA item whose options are yes/no(/maybe)
is ``yes_no_maybe``; another MCQA item is ``task_families[task]`` (default ``multiple_choice``); a row
without an item is ``task_families[task]`` if listed (``open_qa``, ``summarization`` by default) and
single-turn; any other row is left alone. Rows whose answer is a generated chain of thought
(``meta.cot``) only get templates without an ``assistant`` part, so the reasoning is never replaced.

Assignment is a pure function of (``seed``, row id): a row is templated when
``hash(seed, id) < share`` and then picks a template of its family by weight from a second hash, so the
same config gives the same templates on every run, machine and batching, and changing ``share`` only
adds or removes rows at the margin. The template id and family go into ``meta["template"]``; the
stage's counters (manifest ``counters``) count templated rows per family (``templated.<family>``).

The stage drops nothing. Templates are data (see :mod:`aloe_data.templates.library`): the shipped files
plus ``template_files``; ``include``/``exclude`` pick templates by id pattern (``fnmatch``).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from aloe_core.errors import AloeError, ConfigError
from aloe_core.schemas import loads_meta, stable_id
from aloe_core.text import normalize_for_matching
from aloe_data.pipeline.annotations import with_annotations
from aloe_data.pipeline.columns import set_column, update_meta
from aloe_data.pipeline.counters import add_counters
from aloe_data.pipeline.stage import BatchStage, StageConfig
from aloe_data.templates import PromptTemplate, TemplateLibrary, row_variables

META_KEY = "template"
YES_NO = ({"yes", "no"}, {"yes", "no", "maybe"})
DEFAULT_TASK_FAMILIES = {
    "mcqa": "multiple_choice",
    "mcqa_context": "multiple_choice",
    "open_qa": "open_qa",
    "summarization": "summarization",
}


class TemplateConfig(StageConfig):
    type: Literal["template"] = "template"
    share: float = Field(1.0, ge=0, le=1, description="Fraction of eligible rows to template (0-1).")
    seed: int = Field(0, ge=0, description="Same seed, same template for every row.")
    template_files: list[str] = Field(
        default_factory=list, description="Your own template YAML file or folder; repeatable."
    )
    builtin: bool = Field(True, description="Use the shipped templates too (--no-builtin: only yours).")
    include: list[str] = Field(
        default_factory=lambda: ["*"], description="Template id pattern to use (fnmatch); repeatable."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Template id pattern never to use; repeatable."
    )
    task_families: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TASK_FAMILIES),
        description="Template family of rows of each task (row task -> family).",
    )

    @model_validator(mode="after")
    def _no_cot_family(self) -> TemplateConfig:
        if "cot" in self.task_families.values():
            raise ValueError(
                "task_families: `cot` templates are prompts for the cot stage, not row templates"
            )
        return self


def unit_hash(*parts: Any) -> float:
    """A number in [0, 1) determined by ``parts`` (uniform over distinct inputs)."""
    return int(stable_id(*parts)[:13], 16) / 16**13


def row_family(row: Mapping[str, Any], task_families: Mapping[str, str]) -> str | None:
    """The template family of an sft row (see the module docstring), or None if it is not templated."""
    item = row.get("mcqa")
    if item is not None:
        texts = {normalize_for_matching(o["text"]) for o in item["options"]}
        if texts in YES_NO:
            return "yes_no_maybe"
        return task_families.get(row.get("task") or "", "multiple_choice")
    family = task_families.get(row.get("task") or "")
    roles = [m["role"] for m in row.get("messages") or []]
    if family is None or [r for r in roles if r != "system"] != ["user", "assistant"]:
        return None
    return family


def apply_template(row: Mapping[str, Any], template: PromptTemplate) -> list[dict[str, str]]:
    """The row's messages with ``template`` applied: system replaced or added if the template has one,
    the last user message re-rendered, the last assistant message re-rendered if the template has one.

    Raises:
        AloeError: the template does not render for this row (names the row and the template).
    """
    from jinja2 import TemplateError

    try:
        rendered = template.render(row_variables(row))
    except TemplateError as exc:
        raise AloeError(
            f"row {row.get('id')}: template {template.id} ({template.source}) does not render: {exc}"
        ) from None
    messages = [dict(m) for m in row["messages"]]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    messages[last_user]["content"] = rendered.user
    if rendered.assistant is not None:
        last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        messages[last_assistant]["content"] = rendered.assistant
    if rendered.system is not None:
        if messages[0]["role"] == "system":
            messages[0]["content"] = rendered.system
        else:
            messages.insert(0, {"role": "system", "content": rendered.system})
    return messages


class TemplateStage(BatchStage):
    """Rewrite user turns with prompt templates per task family; the template id goes to meta.template.

    Loads (and checks) the library when built, before any Ray work.
    """

    config_class = TemplateConfig
    cli_aliases: ClassVar[dict[str, tuple[str, ...]]] = {"template_files": ("--templates", "-t")}
    config: TemplateConfig

    def __init__(self, config: TemplateConfig) -> None:
        super().__init__(config)
        library = TemplateLibrary.load(config.template_files, builtin=config.builtin)
        self.families: dict[str, list[PromptTemplate]] = {}
        for family in sorted(set(config.task_families.values()) | {"multiple_choice", "yes_no_maybe"}):
            chosen = [t for t in library.family(family) if self._selected(t.id)]
            if chosen:
                self.families[family] = chosen
        if not self.families:
            raise ConfigError(
                f"template stage: include={config.include} exclude={config.exclude} select no template of "
                f"the families {sorted(set(config.task_families.values()))}"
            )
        self.digest = library.digest

    def _selected(self, template_id: str) -> bool:
        def matches(patterns: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(template_id, p) for p in patterns)

        return matches(self.config.include) and not matches(self.config.exclude)

    def fingerprint(self) -> str:
        return self.digest  # the template files' contents: editing a template reruns the stage

    def choose(self, row: Mapping[str, Any], meta: Mapping[str, Any]) -> PromptTemplate | None:
        """The template for ``row`` (None: not templated), from the seeded hashes of its id."""
        candidates = self.families.get(row_family(row, self.config.task_families) or "", [])
        if "cot" in meta:
            candidates = [t for t in candidates if t.assistant is None]
        if not candidates or unit_hash("share", self.config.seed, row["id"]) >= self.config.share:
            return None
        point = unit_hash("pick", self.config.seed, row["id"]) * sum(t.weight for t in candidates)
        for template in candidates:
            point -= template.weight
            if point < 0:
                return template
        return candidates[-1]  # float rounding at the very top of the range

    def process(self, table: pa.Table, kind: str) -> pa.Table:
        if kind != "sft":
            raise AloeError(f"the template stage rewrites sft rows, not {kind} rows")
        rows = table.to_pylist()
        messages = [row["messages"] for row in rows]
        chosen: list[dict[str, str] | None] = [None] * len(rows)
        counters: Counter[str] = Counter()
        for i, row in enumerate(rows):
            if row.get("drop_reason") is not None or not row.get("messages"):
                continue
            template = self.choose(row, loads_meta(row["meta"]))
            if template is None:
                continue
            messages[i] = apply_template(row, template)
            chosen[i] = {"id": template.id, "family": template.family}
            counters[f"templated.{template.family}"] += 1
        table = update_meta(set_column(table, "messages", messages), META_KEY, chosen)
        return add_counters(with_annotations(table, [None] * table.num_rows), counters)
