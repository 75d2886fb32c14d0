"""Generate, verify and retry chains of thought for MCQA rows with any :class:`~aloe_infer.engine.Engine`.

:meth:`CotGenerator.run` takes rows (sft rows with an ``mcqa`` item) and returns one JSON-able result per
row id::

    {"status": "verified" | "unverified" | "error",
     "answer": "B" | None,           # the verified answer
     "forced": bool,                 # the verified answer letter was forced (see cot.prompt)
     "text": str | None,             # verified: the new assistant message; else the last attempt's text
     "error": str | None,            # status error: what the engine or the prompt template reported
     "attempts": [{"seed", "outcome", "answer", "letters", "tokens", "finish", "forced"}, ...]}

Attempt ``k`` of a row samples with ``seed = hash(config.seed, row id, k)``, so a row's attempts do not
depend on batching and a rerun reproduces them. Outcomes: ``verified``, ``wrong``, ``ambiguous``,
``no_answer``, ``too_short`` (reasoning under ``min_words``). Failed rows are retried, batched
together, until verified or ``max_retries`` retries are spent. An engine error on a row (e.g. prompt
longer than the context) ends that row with status ``error``: retrying would fail the same way.

A verified text that does not already end with the answer line gets ``"\\n\\nAnswer: B"`` appended, so
every kept row ends in the same format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aloe_core.schemas import stable_id
from aloe_core.text import words
from aloe_data.cot.config import CotConfig
from aloe_data.cot.prompt import AnswerForcing, answer_line, resolve_forcing, teacher_messages
from aloe_data.templates import PromptTemplate
from aloe_infer.answers import Verdict, has_answer_line, verify
from aloe_infer.engine import Engine

MAX_FAILED_TEXT = 2000  # characters of the last failed attempt kept for debugging


def attempt_seed(seed: int, row_id: str, attempt: int) -> int:
    """The sampling seed of attempt ``attempt`` of row ``row_id`` (31 bits: every engine accepts it)."""
    return int(stable_id("cot", seed, row_id, attempt)[:8], 16) & 0x7FFFFFFF


@dataclass
class _Row:
    id: str
    item: Mapping[str, Any]
    prompt: list[int]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    last_text: str = ""


class CotGenerator:
    """Runs the attempts of a batch of rows on ``engine`` (see the module docstring)."""

    def __init__(self, engine: Engine, config: CotConfig, template: PromptTemplate) -> None:
        self.engine = engine
        self.config = config
        self.template = template
        self._forcing: dict[tuple[str, ...], AnswerForcing | None] = {}

    def run(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Results for ``rows`` keyed by row id (see the module docstring)."""
        from jinja2 import TemplateError

        results: dict[str, dict[str, Any]] = {}
        pending: list[_Row] = []
        for row in rows:
            try:
                messages = teacher_messages(row, self.template, self.config.answer_prefix)
                prompt = self.engine.encode_chat(messages)
            except TemplateError as exc:
                results[row["id"]] = _error([], f"prompt template {self.template.id}: {exc}")
                continue
            pending.append(_Row(row["id"], row["mcqa"], prompt))
        for attempt in range(self.config.max_retries + 1):
            if not pending:
                break
            pending = self._attempt(pending, attempt, results)
        for row in pending:  # every attempt failed
            results[row.id] = {
                "status": "unverified",
                "answer": None,
                "forced": False,
                "text": row.last_text[:MAX_FAILED_TEXT],
                "error": None,
                "attempts": row.attempts,
            }
        return results

    def _attempt(self, rows: list[_Row], attempt: int, results: dict[str, dict[str, Any]]) -> list[_Row]:
        """One attempt for ``rows``; records finished rows in ``results`` and returns those to retry."""
        seeds = [attempt_seed(self.config.seed, row.id, attempt) for row in rows]
        outputs = self.engine.generate(
            [row.prompt for row in rows], [self.config.sampling.params(seed) for seed in seeds]
        )
        texts: dict[int, str] = {}
        for k, (row, output) in enumerate(zip(rows, outputs, strict=True)):
            if output.ok:
                texts[k] = output.completions[0].text.strip()
            else:
                results[row.id] = _error(row.attempts, output.error or "engine error")
        forced = self._force(rows, texts, seeds)
        retry = []
        for k, text in texts.items():
            row, completion = rows[k], outputs[k].completions[0]
            letter, base = forced.get(k, (None, text))
            final = base + self._suffix(row) + letter if letter else text
            verdict = self._judge(final, row)
            row.attempts.append(
                {
                    "seed": seeds[k],
                    "outcome": verdict.outcome,
                    "answer": verdict.letter,
                    "letters": list(verdict.letters),
                    "tokens": len(completion.token_ids) + (1 if letter else 0),
                    "finish": completion.finish_reason,
                    "forced": letter is not None,
                }
            )
            row.last_text = final
            if verdict.outcome == "verified":
                results[row.id] = self._verified(row, final, verdict, letter is not None)
            else:
                retry.append(row)
        return retry

    def _judge(self, text: str, row: _Row) -> Verdict:
        verdict = verify(text, row.item["options"], row.item["answer"], self.config.answer_prefix)
        if verdict.outcome == "verified" and len(self._reasoning_words(text)) < self.config.min_words:
            return Verdict("too_short", verdict.letter, verdict.letters)
        return verdict

    def _reasoning_words(self, text: str) -> list[str]:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and has_answer_line(text, self.config.answer_prefix):
            lines = lines[:-1]
        return words("\n".join(lines))

    def _verified(self, row: _Row, text: str, verdict: Verdict, forced: bool) -> dict[str, Any]:
        if not has_answer_line(text, self.config.answer_prefix):
            text = f"{text}\n\n{answer_line(self.config.answer_prefix, verdict.letter or '')}"
        return {
            "status": "verified",
            "answer": verdict.letter,
            "forced": forced,
            "text": text,
            "error": None,
            "attempts": row.attempts,
        }

    def _forcing_for(self, row: _Row) -> AnswerForcing | None:
        letters = tuple(o["letter"] for o in row.item["options"])
        if letters not in self._forcing:
            self._forcing[letters] = resolve_forcing(
                self.engine.tokenizer, self.config.answer_prefix, letters
            )
        return self._forcing[letters]

    def _suffix(self, row: _Row) -> str:
        """What goes between a reasoning and its forced letter: the forcing suffix, then a space."""
        forcing = self._forcing_for(row)
        suffix = forcing.suffix if forcing is not None else "\n\n" + self.config.answer_prefix.strip()
        return suffix if suffix.endswith(" ") else suffix + " "

    def _force(self, rows: list[_Row], texts: dict[int, str], seeds: list[int]) -> dict[int, tuple[str, str]]:
        """For the rows whose reasoning has no answer: index -> (forced letter, the reasoning it follows,
        without a dangling answer prefix the model began but did not finish)."""
        if not self.config.force_answer:
            return {}
        todo, prompts, params = [], [], []
        for k, text in texts.items():
            row = rows[k]
            forcing = self._forcing_for(row)
            if forcing is None or len(words(text)) < self.config.min_words:
                continue
            if verify(text, row.item["options"], row.item["answer"], self.config.answer_prefix).outcome != (
                "no_answer"
            ):
                continue
            allowed = forcing.allowed([o["letter"] for o in row.item["options"]])
            base = _without_dangling_prefix(text, self.config.answer_prefix)
            continuation = self.engine.tokenizer.encode(base + forcing.suffix, add_special_tokens=False)
            todo.append((k, forcing, base))
            prompts.append(row.prompt + list(continuation))
            # The letter is drawn like the reasoning (same temperature, the attempt's seed), so a retry
            # can also change a forced answer; at temperature 0 it is the model's most likely letter.
            params.append(
                self.config.sampling.params(seeds[k]).model_copy(
                    update={"max_tokens": 1, "allowed_token_ids": allowed, "stop": (), "ignore_eos": True}
                )
            )
        letters: dict[int, tuple[str, str]] = {}
        for (k, forcing, base), output in zip(todo, self.engine.generate(prompts, params), strict=True):
            if output.ok and output.completions[0].token_ids:
                letter = forcing.letter_of(output.completions[0].token_ids[0])
                if letter is not None:
                    letters[k] = (letter, base)
        return letters


def _without_dangling_prefix(text: str, answer_prefix: str) -> str:
    """``text`` without a last line that is only the answer prefix (``"Answer:"`` cut off by max_tokens)."""
    lines = text.rstrip().splitlines()
    if lines and lines[-1].strip(" *_#:").lower() == answer_prefix.strip(" *_#:").lower():
        return "\n".join(lines[:-1]).rstrip()
    return text


def _error(attempts: list[dict[str, Any]], message: str) -> dict[str, Any]:
    return {
        "status": "error",
        "answer": None,
        "forced": False,
        "text": None,
        "error": message,
        "attempts": attempts,
    }
