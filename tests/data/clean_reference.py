"""The ``clean`` stage as it was before it worked on whole Arrow arrays: one Python dict per row, one
string at a time, langid.py's ``rank`` per row. Kept verbatim (less the config, which did not change),
with ``update_meta`` as it was then, as the oracle that tests/data/test_clean_fast.py and
benchmarks/clean.py compare the batched stage with."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from aloe_core.schemas import dumps_meta, loads_meta
from aloe_core.text import normalize_for_matching
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.pipeline.columns import META, set_column
from aloe_data.pipeline.counters import add_counters
from aloe_data.stages.clean import CleanConfig
from aloe_data.stages.pii import find_pii, scrub_pii

_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")  # zero-width characters and soft hyphens
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")

# The meta["clean"] key and counter prefix per pii_action (drop: the strings found in dropped rows).
_PII_DONE = {"mask": "pii_masked", "remove": "pii_removed", "drop": "pii_found"}


def update_meta(table: pa.Table, key: str, values: Sequence[Any], *, merge: bool = False) -> pa.Table:
    """``aloe_data.pipeline.columns.update_meta`` as it was (every row's meta through Python)."""
    if len(values) != table.num_rows:
        raise ValueError(f"update_meta: {len(values)} values for {table.num_rows} rows")
    if all(v is None for v in values):
        return table
    metas = table.column(META).to_pylist()
    for i, value in enumerate(values):
        if value is None:
            continue
        meta = loads_meta(metas[i])
        if merge and isinstance(value, Mapping) and isinstance(meta.get(key), dict):
            meta[key] = {**meta[key], **value}
        else:
            meta[key] = value
        metas[i] = dumps_meta(meta)
    return set_column(table, META, pa.array(metas, pa.string()))


def normalize_text(text: str, config: CleanConfig) -> str:
    if config.unicode_form != "none":
        text = unicodedata.normalize(config.unicode_form, text)
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    if config.normalize_whitespace:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        text = _BLANK_LINES.sub("\n\n", text).strip()
    return text


def _map_texts(row: dict[str, Any], kind: str, fn: Callable[[str], str]) -> None:
    """Apply ``fn`` to every free-text field of a record in place (messages, MCQA item, preference)."""
    message_fields = ("messages",) if kind == "sft" else ("prompt",)
    for field in message_fields:
        for message in row.get(field) or []:
            message["content"] = fn(message["content"])
    if kind == "preference":
        row["chosen"], row["rejected"] = fn(row["chosen"]), fn(row["rejected"])
    item = row.get("mcqa") if kind == "sft" else None
    if item:
        for key in ("question", "context", "explanation"):
            if item.get(key) is not None:
                item[key] = fn(item[key])
        for option in item["options"]:
            option["text"] = fn(option["text"])


def _answers(row: dict[str, Any], kind: str) -> list[str]:
    if kind == "preference":
        return [row["chosen"]]
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def _questions(row: dict[str, Any], kind: str) -> list[str]:
    messages = row["messages"] if kind == "sft" else row["prompt"]
    return [m["content"] for m in messages if m["role"] == "user"]


def _all_text(row: dict[str, Any], kind: str) -> str:
    messages = row["messages"] if kind == "sft" else row["prompt"]
    parts = [m["content"] for m in messages]
    if kind == "preference":
        parts += [row["chosen"], row["rejected"]]
    return "\n".join(parts)


@lru_cache(maxsize=8)
def _language_identifier(candidates: tuple[str, ...]):
    """One langid.py identifier per worker process, restricted to ``candidates`` (loaded lazily)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(candidates))
    return identifier


def language_scores(texts: list[str], languages: tuple[str, ...], candidates: tuple[str, ...]) -> list[float]:
    """Probability (0-1) that each text is in one of ``languages``, from langid.py (offline model)."""
    identifier = _language_identifier(tuple(dict.fromkeys(languages + candidates)))
    scores = []
    for text in texts:
        ranked = identifier.rank(text[:4000])
        if ranked[0][0] in languages:
            scores.append(1.0)
        else:
            scores.append(sum(p for lang, p in ranked if lang in languages))
    return scores


class ReferenceClean:
    """The per-row ``CleanStage.process`` (same config, same output table)."""

    def __init__(self, config: CleanConfig) -> None:
        self.config = config

    def _row_reason(self, row: dict[str, Any], kind: str) -> tuple[str | None, str | None]:
        config = self.config
        answers = _answers(row, kind)
        if config.drop_empty_answers and any(not a.strip() for a in answers):
            return "empty_answer", "an assistant answer is empty"
        short = [a for a in answers if len("".join(a.split())) < config.min_answer_chars]
        if short:
            return "min_answer_chars", f"answer {short[0][:40]!r} has < {config.min_answer_chars} characters"
        length = len(_all_text(row, kind))
        if length > config.max_chars:
            return "max_chars", f"{length} characters > {config.max_chars}"
        if config.drop_answer_repeats_question:
            questions = {normalize_for_matching(q) for q in _questions(row, kind)}
            if any(normalize_for_matching(a) in questions for a in answers):
                return "answer_repeats_question", "an answer repeats the question"
        return None, None

    def _scrub(self, row: dict[str, Any], kind: str) -> Counter[str]:
        """Scrub the row in place; how many strings of each PII kind it held."""
        config = self.config
        hits: Counter[str] = Counter()
        if config.pii_action == "keep" or not config.pii_kinds:
            return hits
        if config.pii_action == "drop":
            found = find_pii(_all_text(row, kind), config.pii_kinds)
            return Counter({k: len(v) for k, v in found.items()})

        def scrub(text: str) -> str:
            text, hit = scrub_pii(text, config.pii_kinds, config.pii_action)  # type: ignore[arg-type]
            hits.update(hit)
            return text

        _map_texts(row, kind, scrub)
        return hits

    def process(self, table: pa.Table, kind: str) -> pa.Table:
        rows = table.to_pylist()
        reasons: list[str | None] = []
        details: list[str | None] = []
        changes: list[dict[str, Any] | None] = []  # what meta["clean"] gets on each row
        counters: Counter[str] = Counter()
        done = _PII_DONE.get(self.config.pii_action, "pii_found")
        for row in rows:
            reason, detail, change = row.get("drop_reason"), row.get("drop_detail"), None
            if reason is None:
                _map_texts(row, kind, lambda text: normalize_text(text, self.config))
                hits = self._scrub(row, kind)
                counters.update({f"{done}.{k}": n for k, n in hits.items()})
                if hits and self.config.pii_action == "drop":
                    reason, detail = "pii", f"contains {sorted(hits)}"
                elif hits:
                    change = {done: sorted(hits)}
                if reason is None:
                    reason, detail = self._row_reason(row, kind)
            reasons.append(reason)
            details.append(detail)
            changes.append(change)
        self._language_filter(rows, kind, reasons, details)
        for row, reason, detail in zip(rows, reasons, details, strict=True):
            row["drop_reason"], row["drop_detail"] = reason, detail
        out = pa.Table.from_pylist(rows, schema=_output_schema(table, kind))
        return add_counters(update_meta(out, "clean", changes, merge=True), counters)

    def _language_filter(self, rows: list[dict], kind: str, reasons: list, details: list) -> None:
        if not self.config.languages:
            return
        todo = [i for i, r in enumerate(reasons) if r is None]
        texts = [_all_text(rows[i], kind) for i in todo]
        scores = language_scores(texts, self.config.languages, self.config.candidate_languages)
        for i, score in zip(todo, scores, strict=True):
            if score < self.config.min_language_confidence:
                reasons[i] = "languages"
                details[i] = f"confidence {score:.3f} that the row is in {list(self.config.languages)}"


def _output_schema(table: pa.Table, kind: str) -> pa.Schema:
    """The input's columns with annotation columns guaranteed (so an all-kept batch still has them)."""
    schema = annotated_schema(kind)
    extra = [f for f in table.schema if f.name not in schema.names]
    return pa.schema(list(schema) + extra)
