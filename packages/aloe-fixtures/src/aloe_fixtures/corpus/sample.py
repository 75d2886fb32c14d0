"""Write the embedded corpus (source files + ground truth) and the tokenizer training texts.

Generation order is fixed (benchmark first, then files in :data:`FILE_SHARES` order, clean rows before
planted ones), every random choice comes from ``random.Random`` streams seeded by (seed, file), and the
distinctness guard is deterministic, so the same (rows, seed, rates) always gives the same bytes.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_core import collector
from aloe_core.text import words
from aloe_fixtures.corpus import chat, mcqa, multilingual, preference, yesno
from aloe_fixtures.corpus.defects import (
    ALL_FILES,
    KINDS,
    PREFERENCE,
    PUBMEDQA,
    DefectRates,
    allocate,
    expected_count,
    file_sizes,
)
from aloe_fixtures.corpus.formats import BENCHMARK_FILE, prompt_engine_record
from aloe_fixtures.corpus.guard import DistinctGuard
from aloe_fixtures.corpus.items import ChatItem, Item, McqaItem, PreferenceItem, YesNoItem, tokens
from aloe_fixtures.corpus.mix import Mix

# Share of rows per file: 35% multiple choice over three formats, 10% yes/no/maybe, 40% chat over three
# formats, 15% preference pairs.
FILE_SHARES: dict[str, float] = {
    "prompt_engine/sample_mcqa.json": 0.10,
    "medmcqa/train.jsonl": 0.13,
    "medqa/train.jsonl": 0.12,
    PUBMEDQA: 0.10,
    "chat/openai.jsonl": 0.16,
    "chat/sharegpt.jsonl": 0.12,
    "chat/alpaca.jsonl": 0.12,
    "preference/pairs.jsonl": 0.15,
}
assert tuple(FILE_SHARES) == ALL_FILES
BENCHMARK_SHARE = 0.02
BENCHMARK_MIN = 50
BATCH = 256  # candidates checked together by the guard
MAX_EMPTY_BATCHES = 12  # consecutive batches without one accepted row before giving up (never reached)


def make_mix(path: str) -> Mix | None:
    """The adaptive generator mix of a file (None for PubMedQA, which has a single generator)."""
    if path == "prompt_engine/sample_mcqa.json":
        return mcqa.make_mix({"vignette": 0.7, "short": 0.3})
    if path == "medmcqa/train.jsonl":
        return mcqa.make_mix({"short": 0.7, "vignette": 0.3})
    if path == "medqa/train.jsonl":
        return mcqa.make_mix({"vignette": 1.0})  # MedQA items are clinical vignettes
    if path.startswith("chat/"):
        return chat.make_mix()
    if path == PREFERENCE:
        return preference.make_mix()
    return None


def fresh_item(path: str, rng: random.Random, mix: Mix | None = None) -> Item:
    """One clean candidate for ``path`` (not yet checked for distinctness)."""
    if path == "prompt_engine/sample_mcqa.json":
        return mcqa.generate(rng, 4 if rng.random() < 0.7 else 5, mix=mix)
    if path == "medmcqa/train.jsonl":
        return mcqa.generate(rng, 4, mix=mix)
    if path == "medqa/train.jsonl":
        return mcqa.generate(rng, 5 if rng.random() < 0.5 else 4, mix=mix)
    if path == PUBMEDQA:
        return yesno.generate(rng)
    if path.startswith("chat/"):
        return chat.generate(rng, path.split("/")[1].split(".")[0], mix)
    return preference.generate(rng, mix)


def non_english_item(path: str, rng: random.Random, lang: str) -> Item:
    if path.startswith(("prompt_engine", "medmcqa", "medqa")):
        n = 4 if path.startswith("medmcqa") or rng.random() < 0.6 else 5
        return multilingual.mcqa_item(rng, lang, n)
    if path == PUBMEDQA:
        return multilingual.yesno_item(rng, lang)
    if path.startswith("chat/"):
        return multilingual.chat_item(rng, lang, path.split("/")[1].split(".")[0])
    return multilingual.preference_item(rng, lang)


@dataclass
class Row:
    """One row of a file before ordering: its item (or raw line), its defect and where it sorts."""

    item: Item | None
    key: float
    kind: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    original: Row | None = None  # for duplicates
    record_edit: Callable[[dict[str, Any]], dict[str, Any] | str] | None = None  # malformed rows


class Generator:
    """Guarded generation shared by the corpus writer and the tokenizer texts."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.guard = DistinctGuard()
        self._mixes: dict[str, Mix | None] = {}

    def _mix(self, path: str) -> Mix | None:
        if path not in self._mixes:
            self._mixes[path] = make_mix(path)
        return self._mixes[path]

    def fresh_many(self, path: str, rng: random.Random, n: int) -> list[Item]:
        """``n`` guarded clean rows for ``path``, generated and checked in batches (the file's adaptive
        mix learns from each batch's decisions)."""
        mix = self._mix(path)
        return self.guarded_many(lambda: fresh_item(path, rng, mix), n, mix, path)

    def guarded_many(
        self, make: Callable[[], Item], n: int, mix: Mix | None = None, what: str = "rows"
    ) -> list[Item]:
        """``n`` items from ``make`` that pass the guard, checked in batches."""
        out: list[Item] = []
        misses = 0
        while len(out) < n:
            size = min(BATCH, max(8, int((n - len(out)) * 1.25)))
            batch, choices = [], []
            for _ in range(size):
                batch.append(make())
                choices.append(mix.last if mix is not None else 0)
            decisions = self.guard.admit_batch([tokens(item) for item in batch])
            if mix is not None:
                mix.feedback(choices, decisions)
            accepted = [item for item, ok in zip(batch, decisions, strict=True) if ok]
            misses = misses + 1 if not accepted else 0
            if misses > MAX_EMPTY_BATCHES:
                raise RuntimeError(
                    f"{what}: no distinct row in {misses} batches; the fact table is exhausted "
                    f"for this many rows (guard holds {len(self.guard)} rows)"
                )
            out += accepted[: n - len(out)]
        return out

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(["aloe-corpus", str(self.seed), *map(str, parts)]))

    def benchmark(self, n: int) -> list[McqaItem]:
        """``n`` held-out items (the first half with 4 options, the rest with 5), registered in the
        guard's 13-gram filter."""
        rng = self.rng("benchmark")
        items: list[McqaItem] = []
        for options, count in ((4, (n + 1) // 2), (5, n // 2)):
            make = functools.partial(mcqa.generate_benchmark, rng, options)
            items += self.guarded_many(make, count, what="benchmark")
        for item in items:
            self.guard.add_benchmark(words(benchmark_text(item)))
        return items


def benchmark_text(item: McqaItem) -> str:
    """A benchmark item's text for n-gram decontamination: question then options in order."""
    return "\n".join([item.question, *item.options])


def benchmark_size(rows: int, leaks: int) -> int:
    return max(BENCHMARK_MIN, expected_count(BENCHMARK_SHARE, rows), leaks)


def benchmark_records(items: list[McqaItem]) -> dict[str, dict[str, Any]]:
    records = {}
    for i, item in enumerate(items):
        uid = f"aloebench-{i:05d}"
        records[uid] = prompt_engine_record(item, uid)
    return records


def tokenizer_training_texts(seed: int = 0, rows: int = 3000) -> list[str]:
    """Clean English medical texts of every task type (question + answer), for training a small tokenizer.

    Deterministic for a given (seed, rows); about 0.6 s of CPU for 3000 rows. No defects, no PII, no
    non-English.
    """
    gen = Generator(seed)
    sizes = file_sizes(rows, FILE_SHARES)
    texts: list[str] = []
    with collector.paused():  # millions of small acyclic objects
        for path, n in sizes.items():
            rng = gen.rng("tokenizer", path)
            texts += [render_text(item) for item in gen.fresh_many(path, rng, n)]
    order = random.Random(f"aloe-tokenizer-order:{seed}")
    order.shuffle(texts)
    return texts


def render_text(item: Item) -> str:
    """Plain text of an item: question (+ options) and answer, as a model would see it."""
    if isinstance(item, McqaItem):
        options = "\n".join(f"{letter}. {text}" for letter, text in item.option_map().items())
        return f"{item.question}\n{options}\nAnswer: {item.answer_letter}. {item.explanation}"
    if isinstance(item, YesNoItem):
        return "\n".join(
            [*item.contexts, f"Question: {item.question}", f"Answer: {item.decision}. {item.long_answer}"]
        )
    if isinstance(item, ChatItem):
        return "\n".join(content for _, content in item.messages)
    assert isinstance(item, PreferenceItem)
    return f"{item.prompt}\n{item.chosen}"


def write_sample(out_dir: Path, rows: int, seed: int = 0, rates: DefectRates | None = None) -> dict[str, Any]:
    """Write the synthetic corpus with planted defects to ``out_dir`` and return a summary.

    Files: see :mod:`aloe_fixtures.corpus.formats`; ``ground_truth.json`` lists every planted row as
    ``{file, row, kind, ...}`` (``row`` = 1-based line for JSONL, object key for JSON files) plus
    ``seed``, ``rows``, ``rates``, ``files`` ({path: rows including malformed}), ``benchmark`` and
    ``counts`` ({kind: n}). The same (rows, seed, rates) gives byte-identical files.

    Returns: {"files", "benchmark", "counts", "clean", "rows", "seed"}.

    Raises:
        ValueError: ``rows`` < 1, or rates too high for the number of rows.
    """
    from aloe_fixtures.corpus.assemble import build_corpus

    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rates = rates or DefectRates()
    sizes = file_sizes(rows, FILE_SHARES)
    plan = allocate(rates, sizes)
    with collector.paused():  # millions of small acyclic objects
        result = build_corpus(Generator(seed), sizes, plan)
    out_dir = Path(out_dir)
    result.write(out_dir)
    counts = {k: sum(plan[f][k] for f in plan) for k in KINDS}
    truth = {
        "seed": seed,
        "rows": rows,
        "rates": rates.as_dict(),
        "files": sizes,
        "benchmark": {"file": BENCHMARK_FILE, "items": len(result.benchmark)},
        "counts": counts,
        "defects": result.defects,
    }
    (out_dir / "ground_truth.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return {
        "rows": rows,
        "seed": seed,
        "files": sizes,
        "benchmark": {BENCHMARK_FILE: len(result.benchmark)},
        "counts": counts,
        "clean": rows - sum(counts.values()),
    }
