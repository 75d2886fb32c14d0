"""Cleaning: normalise text, scrub personal data, drop rows that are empty, too long, not in the
wanted language, or whose answer only repeats the question.

Each rule is one config field, and a dropped row's ``drop_reason`` is named after the rule that dropped it
(``empty_answer``, ``min_answer_chars``, ``max_chars``, ``languages``, ``answer_repeats_question``,
``pii``). Rows that were changed but kept record what changed in ``meta["clean"]`` (e.g.
``{"pii_masked": ["email"]}``), and the stage's counters (manifest ``counters``) say how many strings of
each kind were masked, removed or found (``pii_action: drop``): ``pii_masked.email``,
``pii_masked.phone``, ``pii_masked.url``.

A batch is cleaned as whole Arrow arrays, never as Python rows: every free-text string of the batch
(message contents, MCQA fields and options, chosen/rejected) is normalised and scrubbed in one flat
array, the rules are array operations, and language identification runs for the batch at once
(:mod:`aloe_data.stages.language`). The result is the one :func:`normalize_text` and the PII and
language functions give string by string: RE2 does only what it provably does the same way (ASCII
character classes, or classes spelt out from Python's own Unicode tables), strings that need no change
are recognised and left alone, and the few that need Python's exact semantics go through the per-string
functions: strings with Unicode spaces other than space/tab/CR/LF, or with characters Unicode
normalisation could change; PII candidates; near ties in language identification.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from aloe_core.text import normalize_for_matching
from aloe_data.pipeline.annotations import DROP_DETAIL, DROP_REASON, annotated_schema
from aloe_data.pipeline.columns import update_meta
from aloe_data.pipeline.counters import add_counters
from aloe_data.pipeline.stage import BatchStage, StageConfig
from aloe_data.stages.arrow_text import (
    Leaf,
    leaf,
    map_where,
    matches,
    may_change_under,
    python_class,
    row_any,
    utf8_buffers,
    valid_mask,
    whitespace_class,
    with_leaf,
)
from aloe_data.stages.language import exact_score, language_bounds, language_scores
from aloe_data.stages.pii import PiiKind, find_pii_array, scrub_pii_array

__all__ = ["CleanConfig", "CleanStage", "language_scores", "normalize_text", "normalize_texts"]

_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")  # zero-width characters and soft hyphens
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")

# RE2 spellings of the same: _INVISIBLE and _CONTROL together (tests check them code point by code point).
_DELETE_RE2 = r"[\x{200b}-\x{200d}\x{2060}\x{feff}\x{ad}\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
# Runs of ASCII spaces and tabs (all that _SPACES matches in text without the characters of _ODD_SPACE);
# a line break with the spaces around it; three or more line breaks.
_SPACE_RUN_RE2, _LINE_END_RE2, _BLANK_LINES_RE2 = r"[ \t]+", r" ?\n ?", r"\n{3,}"
# A string that holds none of these needs no whitespace normalisation at all.
_UNTIDY_RE2 = r"[\t\r]|  |^[ \n]|[ \n]$| \n|\n |\n\n\n"

_CANDIDATE_LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "nl", "ru", "zh", "ja", "ko", "ar", "tr", "pl",
    "sv", "da", "ca", "ro", "cs", "hi", "el", "he", "fa", "id", "vi", "uk", "hu", "fi",
)  # fmt: skip

# The meta["clean"] key and counter prefix per pii_action (drop: the strings found in dropped rows).
_PII_DONE = {"mask": "pii_masked", "remove": "pii_removed", "drop": "pii_found"}

# Free-text strings per record kind: (column, struct fields below it); list levels are implicit.
_TEXT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sft": (
        ("messages", "content"),
        ("mcqa", "question"),
        ("mcqa", "context"),
        ("mcqa", "explanation"),
        ("mcqa", "options", "text"),
    ),
    "preference": (("prompt", "content"), ("chosen",), ("rejected",)),
}
_MESSAGES = {"sft": "messages", "preference": "prompt"}


class CleanConfig(StageConfig):
    type: Literal["clean"] = "clean"
    # NFC keeps "m²" and "µg" as written; NFKC would turn them into "m2" and "μg".
    unicode_form: Literal["NFC", "NFKC", "none"] = Field(
        "NFC", description="Unicode normalisation of every text (NFC keeps 'm²' and 'µg' as written)."
    )
    normalize_whitespace: bool = Field(
        True, description="Collapse runs of spaces, strip lines, keep at most one blank line."
    )
    pii_kinds: tuple[PiiKind, ...] = Field(
        ("email", "url", "phone"), description="Kinds of personal data to look for: email, url, phone."
    )
    pii_action: Literal["mask", "remove", "drop", "keep"] = Field(
        "mask", description="mask, remove, drop (the row) or keep emails, phone numbers and URLs."
    )
    drop_empty_answers: bool = Field(True, description="Drop rows with an empty assistant answer.")
    min_answer_chars: int = Field(
        3, ge=0, description="Drop rows with an assistant answer of fewer non-space characters."
    )
    max_chars: int = Field(20_000, gt=0, description="Drop rows with more characters in total.")
    languages: tuple[str, ...] = Field(
        ("en",), description="ISO 639-1 codes of the languages to keep; empty keeps every language."
    )
    # Public medical data comes in these; with every language allowed, English text dense with drug
    # names is sometimes placed in a rare one.
    candidate_languages: tuple[str, ...] = Field(
        _CANDIDATE_LANGUAGES,
        description="Languages the identifier chooses among (langid.py knows 97).",
    )
    min_language_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Drop a row whose top language is not wanted below this probability of a wanted one.",
    )
    drop_answer_repeats_question: bool = Field(
        True, description="Drop rows whose answer only repeats the question."
    )


def normalize_text(text: str, config: CleanConfig) -> str:
    """The definition of text normalisation (:func:`normalize_texts` does it for whole arrays)."""
    if config.unicode_form != "none":
        text = unicodedata.normalize(config.unicode_form, text)
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    if config.normalize_whitespace:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        text = _BLANK_LINES.sub("\n\n", text).strip()
    return text


# Whitespace to Python (str.strip, re's \s) that survives control-character removal and is not a plain
# space, tab or line break: NBSP, \x85, \u2028, the typographic spaces...
_ODD_SPACE = rf"(?![ \t\n\r]|{_CONTROL.pattern})\s"


@lru_cache(maxsize=2)
def _needs_work_re2(normalize_whitespace: bool) -> str:
    """RE2 pattern of the strings :func:`normalize_text` may change (after Unicode normalisation)."""
    if not normalize_whitespace:
        return _DELETE_RE2
    return f"{_DELETE_RE2}|{python_class(_ODD_SPACE)}|{_UNTIDY_RE2}"


def _tidy_whitespace_re2(texts: pa.Array) -> pa.Array:
    """:func:`normalize_text`'s whitespace steps for strings without odd spaces, where Python's
    whitespace is only space, tab, CR and LF: runs of space/tab collapse to one space, lines lose their
    end spaces, three or more line breaks become two, and the ends lose spaces and line breaks."""
    texts = pc.replace_substring_regex(texts, r"\r\n?", "\n")
    texts = pc.replace_substring_regex(texts, _SPACE_RUN_RE2, " ")
    texts = pc.replace_substring_regex(texts, _LINE_END_RE2, "\n")
    texts = pc.replace_substring_regex(texts, _BLANK_LINES_RE2, "\n\n")
    return pc.utf8_trim(texts, " \n")


def normalize_texts(texts: pa.Array, config: CleanConfig) -> pa.Array:
    """:func:`normalize_text` of every string of ``texts`` (nulls stay null).

    Unicode normalisation runs in Python (RE2's Unicode tables are not this Python's), on the strings
    with a character that may change under it only; strings that then hold nothing to change are left as
    they are; of the rest, those with odd spaces go through :func:`normalize_text`, the others through RE2.
    """
    if config.unicode_form != "none":
        unstable = matches(texts, may_change_under(config.unicode_form))
        texts = map_where(texts, unstable, partial(unicodedata.normalize, config.unicode_form))
    work = matches(texts, _needs_work_re2(config.normalize_whitespace))
    if not work.any():
        return texts
    todo = texts.filter(pa.array(work))
    done = pc.replace_substring_regex(todo, _DELETE_RE2, "")
    if config.normalize_whitespace:
        done = _tidy_whitespace_re2(done)
        odd = matches(todo, python_class(_ODD_SPACE))
        if odd.any():
            exact = [normalize_text(text, config) for text in todo.filter(pa.array(odd)).to_pylist()]
            done = pc.replace_with_mask(done, pa.array(odd), pa.array(exact, pa.string()))
    return pc.replace_with_mask(texts, pa.array(work), done)


def _fewer_nonspace(texts: pa.Array, limit: int) -> np.ndarray:
    """Whether each string has fewer than ``limit`` characters that are not Python whitespace
    (``len("".join(text.split())) < limit``); an anchored RE2 match stops at the ``limit``-th one."""
    if limit == 0:
        return np.zeros(len(texts), dtype=bool)
    space, other = whitespace_class(), whitespace_class(negate=True)
    if limit <= 100:  # RE2 gets slow with large repeat counts (and refuses more than 1000)
        return matches(texts, f"^{space}*(?:{other}{space}*){{0,{limit - 1}}}$")
    spaces = pc.count_substring_regex(texts, space).to_numpy(zero_copy_only=False)
    return pc.utf8_length(texts).to_numpy(zero_copy_only=False) - spaces < limit


def _may_repeat(answers: Leaf, questions: Leaf, n_rows: int) -> np.ndarray:
    """Per row, whether one of its answers may repeat one of its questions under
    ``normalize_for_matching`` (false where every pair certainly differs, see
    :func:`~aloe_data.stages.clean_kernels.may_match`)."""
    from aloe_data.stages.clean_kernels import may_match  # numba only where batches run

    q_start = np.searchsorted(questions.rows, answers.rows, side="left")
    q_count = np.searchsorted(questions.rows, answers.rows, side="right") - q_start
    left = np.repeat(np.arange(len(answers.rows)), q_count)
    right = np.repeat(q_start - np.cumsum(q_count) + q_count, q_count) + np.arange(len(left))
    data, offsets = utf8_buffers(pa.concat_arrays([answers.values, questions.values]))
    maybe = np.zeros(len(left), dtype=np.bool_)
    may_match(data, offsets, left, right + len(answers.rows), maybe)
    return row_any(maybe, answers.rows[left], n_rows)


def _repeats(answers: list[str], questions: list[str]) -> bool:
    """The rule itself: an answer equals a question under ``normalize_for_matching``."""
    normalized = {normalize_for_matching(q) for q in questions}
    return any(normalize_for_matching(a) in normalized for a in answers)


def _grouped(values: pa.Array, rows: np.ndarray, wanted: np.ndarray) -> dict[int, list[str]]:
    """The strings of the rows in ``wanted`` (a row mask), by row, in order."""
    (where,) = np.nonzero(wanted[rows])
    groups: dict[int, list[str]] = {}
    for row, text in zip(rows[where], values.take(pa.array(where)).to_pylist(), strict=True):
        groups.setdefault(int(row), []).append(text)
    return groups


def _output_schema(table: pa.Table, kind: str) -> pa.Schema:
    """The input's columns with annotation columns guaranteed (so an all-kept batch still has them)."""
    schema = annotated_schema(kind)
    extra = [f for f in table.schema if f.name not in schema.names]
    return pa.schema(list(schema) + extra)


def _conformed(table: pa.Table, kind: str) -> pa.Table:
    """``table`` with exactly the output schema's columns, in its order and types, one chunk each."""
    schema = _output_schema(table, kind)
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        column = column.cast(field.type) if column.type != field.type else column
        columns.append(column.combine_chunks())
    return pa.Table.from_arrays(columns, schema=schema)


def _array(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).chunk(0)


@dataclass
class _Verdicts:
    """Per row: the drop reason and detail so far, and whether the row is still to be judged."""

    reasons: np.ndarray  # object: str or None
    details: np.ndarray  # object: str or None
    pending: np.ndarray  # bool

    def drop(self, mask: np.ndarray, reason: str, details: Any) -> None:
        """Drop the pending rows of ``mask`` for ``reason``; ``details``: one string for all of them, or
        a function of the row index."""
        rows = np.flatnonzero(mask & self.pending)
        for row in rows:
            self.reasons[row] = reason
            self.details[row] = details if isinstance(details, str) else details(int(row))
        self.pending[rows] = False


@dataclass(frozen=True)
class _Turns:
    """A batch's answers (assistant messages; ``chosen`` of preference rows) and questions (user
    messages), each in row order."""

    answers: Leaf
    questions: Leaf

    @classmethod
    def of(cls, table: pa.Table, kind: str, messages: Leaf) -> _Turns:
        roles = leaf(_array(table, _MESSAGES[kind]), ("role",)).values
        questions = _subset(messages, _equals(roles, "user") & messages.present)
        if kind == "preference":
            chosen = _array(table, "chosen")
            return cls(Leaf(chosen, np.arange(len(chosen)), valid_mask(chosen)), questions)
        return cls(_subset(messages, _equals(roles, "assistant") & messages.present), questions)


class CleanStage(BatchStage):
    """Normalise text, scrub PII, drop empty/short/too-long/non-English/question-repeating rows."""

    config_class = CleanConfig
    config: CleanConfig
    # Rows per process() call. The work per batch is whole-array kernels, whose fixed costs 1,024 rows
    # did not amortise: on the corpus, one pinned core, sizes interleaved, best of 7 passes, 1,024 rows
    # gave 31.5-33.9k rows/s, 2,048 36.0-38.4k, 4,096 37.6-40.0k, 8,192 39.2-39.9k (memory per batch
    # grows with it; 4,096 is also fuzzy dedup's signature batch).
    batch_size: ClassVar[int] = 4096

    def process(self, table: pa.Table, kind: str) -> pa.Table:
        if kind not in _TEXT_PATHS:
            raise ValueError(f"clean works on sft and preference rows, not {kind!r}")
        table = _conformed(table, kind)
        reasons = np.array(_array(table, DROP_REASON).to_pylist(), dtype=object)
        live = np.array([r is None for r in reasons], dtype=bool)
        details = np.array(_array(table, DROP_DETAIL).to_pylist(), dtype=object)
        details[live] = None  # a row the stage judges gets its own detail (or none)
        verdicts = _Verdicts(reasons, details, live.copy())
        table, hits = self._clean_texts(table, kind, live)
        messages = leaf(_array(table, _MESSAGES[kind]), ("content",))
        all_text = _all_text(table, kind, messages)
        if self.config.pii_action == "drop" and self.config.pii_kinds:
            hits = self._drop_pii(all_text, live, verdicts)
        turns = _Turns.of(table, kind, messages)
        self._drop_empty_or_short(turns.answers, verdicts)
        self._drop_too_long(all_text, verdicts)
        if self.config.drop_answer_repeats_question:
            self._drop_repeats(turns, verdicts)
        self._language_filter(all_text, verdicts)
        for name, values in ((DROP_REASON, verdicts.reasons), (DROP_DETAIL, verdicts.details)):
            table = table.set_column(table.column_names.index(name), name, pa.array(values, pa.string()))
        return self._record_pii(table, hits, live)

    def _clean_texts(self, table: pa.Table, kind: str, live: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """Normalise (and, for mask/remove, scrub) every free-text string of the live rows in one flat
        array, and put them back; per row, how many strings of each PII kind were scrubbed."""
        config = self.config
        kinds = config.pii_kinds if config.pii_action in ("mask", "remove") else ()
        leaves = {path: leaf(_array(table, path[0]), path[1:]) for path in _TEXT_PATHS[kind]}
        chosen = {path: lf.present & live[lf.rows] for path, lf in leaves.items()}
        flat = pa.concat_arrays([lf.values.filter(pa.array(chosen[path])) for path, lf in leaves.items()])
        flat = normalize_texts(flat, config)
        string_hits = np.zeros((len(flat), len(kinds)), dtype=np.int64)
        if kinds:
            flat, string_hits = scrub_pii_array(flat, kinds, config.pii_action)  # type: ignore[arg-type]
        hits = np.zeros((table.num_rows, len(config.pii_kinds)), dtype=np.int64)
        start = 0
        for path, lf in leaves.items():
            mask = chosen[path]
            count = int(mask.sum())
            if count:
                values = pc.replace_with_mask(lf.values, pa.array(mask), flat.slice(start, count))
                index = table.column_names.index(path[0])
                column = with_leaf(_array(table, path[0]), path[1:], values)
                table = table.set_column(index, table.schema.field(index), column)
                if kinds:
                    np.add.at(hits, lf.rows[mask], string_hits[start : start + count])
            start += count
        return table, hits

    def _drop_pii(self, all_text: pa.Array, live: np.ndarray, verdicts: _Verdicts) -> np.ndarray:
        """``pii_action: drop``: drop the live rows whose text holds PII; per row, how many strings of
        each kind it holds."""
        kinds = self.config.pii_kinds
        hits = np.where(live[:, None], find_pii_array(all_text, kinds), 0)
        found = hits > 0
        verdicts.drop(
            found.any(axis=1), "pii", lambda r: f"contains {sorted(np.array(kinds)[found[r]].tolist())}"
        )
        return hits

    def _drop_empty_or_short(self, answers: Leaf, verdicts: _Verdicts) -> None:
        """Rows with an empty answer (nothing but whitespace), then rows with an answer of fewer than
        ``min_answer_chars`` characters that are not whitespace (the first such answer is named)."""
        config, n_rows = self.config, len(verdicts.pending)
        if config.drop_empty_answers:
            empty = matches(answers.values, f"^{whitespace_class()}*$")
            verdicts.drop(
                row_any(empty, answers.rows, n_rows), "empty_answer", "an assistant answer is empty"
            )
        short = _fewer_nonspace(answers.values, config.min_answer_chars)
        if not short.any():
            return
        first = _first_per_row(short, answers.rows)
        texts = dict(zip(first, answers.values.take(pa.array(list(first.values()))).to_pylist(), strict=True))
        limit = config.min_answer_chars
        verdicts.drop(
            row_any(short, answers.rows, n_rows),
            "min_answer_chars",
            lambda r: f"answer {texts[r][:40]!r} has < {limit} characters",
        )

    def _drop_too_long(self, all_text: pa.Array, verdicts: _Verdicts) -> None:
        """Rows with more than ``max_chars`` characters in all (message contents joined by line breaks)."""
        limit = self.config.max_chars
        lengths = pc.utf8_length(all_text).fill_null(0).to_numpy(zero_copy_only=False)
        verdicts.drop(lengths > limit, "max_chars", lambda r: f"{lengths[r]} characters > {limit}")

    @staticmethod
    def _drop_repeats(turns: _Turns, verdicts: _Verdicts) -> None:
        """Rows where an answer equals a question under ``normalize_for_matching``: decided in Python
        for the few rows the kernel cannot rule out."""
        answers = _subset(turns.answers, verdicts.pending[turns.answers.rows])
        questions = _subset(turns.questions, verdicts.pending[turns.questions.rows])
        maybe = _may_repeat(answers, questions, len(verdicts.pending)) & verdicts.pending
        row_answers = _grouped(answers.values, answers.rows, maybe)
        row_questions = _grouped(questions.values, questions.rows, maybe)
        repeats = np.zeros(len(verdicts.pending), dtype=bool)
        for row, texts in row_answers.items():
            repeats[row] = _repeats(texts, row_questions.get(row, []))
        verdicts.drop(repeats, "answer_repeats_question", "an answer repeats the question")

    def _language_filter(self, all_text: pa.Array, verdicts: _Verdicts) -> None:
        """Drop the pending rows whose language score is below ``min_language_confidence``: decided from
        the batch's score bounds where they settle it, from the exact score elsewhere."""
        config = self.config
        if not config.languages:
            return
        rows = np.flatnonzero(verdicts.pending)
        texts = all_text.take(pa.array(rows))
        lo, hi = language_bounds(texts, config.languages, config.candidate_languages)
        threshold = config.min_language_confidence
        scores: dict[int, float] = {}
        for i in np.flatnonzero(lo < threshold):
            if hi[i] < threshold and f"{lo[i]:.3f}" == f"{hi[i]:.3f}":
                scores[int(rows[i])] = float(lo[i])  # prints the same as the exact score
            else:
                text = texts[int(i)].as_py() or ""
                score = exact_score(text, config.languages, config.candidate_languages)
                if score < threshold:
                    scores[int(rows[i])] = score
        wanted = list(config.languages)
        dropped = np.zeros(len(verdicts.pending), dtype=bool)
        dropped[list(scores)] = True
        verdicts.drop(
            dropped, "languages", lambda r: f"confidence {scores[r]:.3f} that the row is in {wanted}"
        )

    def _record_pii(self, table: pa.Table, hits: np.ndarray, live: np.ndarray) -> pa.Table:
        """``meta["clean"]`` of scrubbed rows and the stage's PII counters."""
        config = self.config
        done = _PII_DONE.get(config.pii_action, "pii_found")
        kinds = config.pii_kinds
        hits = np.where(live[:, None], hits, 0)
        counters = Counter(
            {f"{done}.{kind}": int(n) for kind, n in zip(kinds, hits.sum(axis=0), strict=True)}
        )
        changes: list[dict[str, Any] | None] = [None] * table.num_rows
        if config.pii_action in ("mask", "remove"):
            for row in np.flatnonzero(hits.any(axis=1)):
                changes[row] = {done: sorted(k for k, n in zip(kinds, hits[row], strict=True) if n)}
        return add_counters(update_meta(table, "clean", changes, merge=True), counters)


def _all_text(table: pa.Table, kind: str, messages: Leaf) -> pa.Array:
    """Each row's text as one string (message contents, then chosen and rejected, joined by line
    breaks): what the length rule, PII dropping and language identification look at."""
    column = _array(table, _MESSAGES[kind])
    offsets = column.offsets.to_numpy().astype(np.int64)
    lists = pa.ListArray.from_arrays(
        pa.array(offsets - offsets[0], pa.int32()), messages.values, mask=column.is_null()
    )
    joined = pc.binary_join(lists, "\n")
    if kind == "preference":
        joined = pc.binary_join_element_wise(joined, _array(table, "chosen"), _array(table, "rejected"), "\n")
    return joined


def _first_per_row(flags: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    """Per row with a flagged string, the index of its first flagged string."""
    first: dict[int, int] = {}
    for i in np.flatnonzero(flags):
        first.setdefault(int(rows[i]), int(i))
    return first


def _equals(values: pa.Array, value: str) -> np.ndarray:
    return pc.equal(values, value).fill_null(False).to_numpy(zero_copy_only=False)


def _subset(strings: Leaf, mask: np.ndarray) -> Leaf:
    """The strings of ``strings`` where ``mask`` is true."""
    (where,) = np.nonzero(mask)
    return Leaf(strings.values.take(pa.array(where)), strings.rows[where], strings.present[where])
