"""Medical multiple-choice benchmarks: the registry, discovery in a folder, and loading with skipped items.

Layout (HPAI-BSC prompt_engine's, as in ``../shared/data/medical-mcqa``): one file per benchmark and
split, ``<stem>_<split>.<ext>``, anywhere under the folder given (``medqa_4opt/medqa_4opt_test.json``,
``mmlu/mmlu_anatomy_test.json``). Files may be prompt-engine JSON (``{uid: {id?, question, options{A..},
correct_answer, context?}}``) or the original datasets' formats (MedMCQA columns, MedQA JSONL, PubMedQA),
told apart per row by their keys (:func:`aloe_core.layouts.sniff_benchmark_format`), in JSON, JSONL or
Parquet (:mod:`aloe_core.containers`).

The registry (:data:`REGISTRY`) names the benchmarks Aloe reports and how their files are called; any
other ``<stem>_<split>`` file is a benchmark too, named after its stem. MMLU is one benchmark with six
subjects, each its own file (``mmlu_<subject>_<split>``). Files whose rows have no options (OpenMedQA:
open-ended) are not multiple-choice benchmarks: they are listed as excluded, not scored.

Malformed items are skipped, never guessed at, and listed with their ids and reasons: a missing or empty
question, a missing answer, an answer that is not among the options, fewer than two options, a duplicate
id. A benchmark left with no valid item is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aloe_core import storage
from aloe_core.containers import READERS
from aloe_core.errors import InputError
from aloe_core.layouts import LAYOUTS, RowError, sniff_benchmark_format

MMLU_MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark Aloe reports: its name, the file stem(s) it is read from, and how it aggregates.

    ``subjects``: for a benchmark split by subject (MMLU), subject name -> file stem. ``multimedqa``: part
    of the MultiMedQA score (size-weighted).
    """

    name: str
    stems: tuple[str, ...]
    subjects: dict[str, str] = field(default_factory=dict)
    multimedqa: bool = False
    title: str = ""


REGISTRY: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("medqa", ("medqa_4opt", "medqa"), multimedqa=True, title="MedQA (USMLE, 4 options)"),
        BenchmarkSpec("medmcqa", ("medmcqa",), multimedqa=True, title="MedMCQA"),
        BenchmarkSpec("pubmedqa", ("pubmedqa",), multimedqa=True, title="PubMedQA"),
        BenchmarkSpec(
            "mmlu",
            tuple(f"mmlu_{s}" for s in MMLU_MEDICAL_SUBJECTS),
            subjects={s: f"mmlu_{s}" for s in MMLU_MEDICAL_SUBJECTS},
            multimedqa=True,
            title="MMLU (six medical subjects)",
        ),
        BenchmarkSpec("careqa", ("careqa",), title="CareQA"),
    )
}
_STEM_OWNER = {stem: spec.name for spec in REGISTRY.values() for stem in spec.stems}
_EXTENSIONS = (".json", ".jsonl", ".parquet")
_CONTAINER = {".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class EvalItem:
    """One question. ``options`` are ``(letter, text)`` in the benchmark's order; ``answer`` a letter."""

    benchmark: str
    subject: str | None
    id: str
    question: str
    options: tuple[tuple[str, str], ...]
    answer: str
    context: str | None = None

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(letter for letter, _ in self.options)


@dataclass(frozen=True)
class SkippedItem:
    id: str
    reason: str


@dataclass
class Benchmark:
    """The valid items of one benchmark split and what was skipped, per subject for MMLU."""

    name: str
    split: str
    files: list[str]
    items: list[EvalItem]
    skipped: list[SkippedItem]

    @property
    def spec(self) -> BenchmarkSpec | None:
        return REGISTRY.get(self.name)

    @property
    def subjects(self) -> list[str]:
        return sorted({i.subject for i in self.items if i.subject is not None})


@dataclass(frozen=True)
class BenchmarkFile:
    benchmark: str
    subject: str | None
    path: Path


def _split_stem(path: Path, split: str) -> str | None:
    name = path.name
    for ext in _EXTENSIONS:
        suffix = f"_{split}{ext}"
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def discover(folder: str | Path, split: str = "test") -> list[BenchmarkFile]:
    """Every ``<stem>_<split>`` file under ``folder``, with its benchmark and subject, sorted by path.

    ``folder`` may be an ``s3://`` / ``gs://`` URI: test sets are small, so the folder is read from this
    machine's copy (:func:`aloe_core.storage.local_copy`, fetched again only when the folder changes).

    Raises:
        InputError: the folder does not exist or holds no such file.
    """
    root = Path(storage.local_copy(folder, missing="benchmark folder"))
    if not root.is_dir():
        raise InputError(f"{root}: benchmark folder not found")
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stem = _split_stem(path, split)
        if stem is None:
            continue
        owner = _STEM_OWNER.get(stem, stem)
        spec = REGISTRY.get(owner)
        subject = next((s for s, st in spec.subjects.items() if st == stem), None) if spec else None
        found.append(BenchmarkFile(owner, subject, path))
    if not found:
        raise InputError(f"{root}: no benchmark file named <name>_{split}.json (or .jsonl, .parquet) in it")
    return found


_WS = re.compile(r"\s+")


def _parse(raw: object, fmt: str) -> tuple[str, tuple[tuple[str, str], ...], str, str | None]:
    parsed = LAYOUTS[fmt](raw)  # type: ignore[arg-type]
    content = parsed.content
    options = tuple((o["letter"], _WS.sub(" ", o["text"]).strip()) for o in content["options"])
    return content["question"], options, content["answer"], content["context"]


def _file_items(file: BenchmarkFile) -> tuple[list[EvalItem], list[SkippedItem], bool]:
    """Items and skipped items of one file, and whether it is open-ended (no options anywhere)."""
    container = _CONTAINER[file.path.suffix]
    items: list[EvalItem] = []
    skipped: list[SkippedItem] = []
    open_ended = True
    with open(file.path, "rb") as stream:
        for raw in READERS[container](stream):
            where = f"{file.path}, row {raw.locator}"
            if raw.error is not None:
                raise InputError(f"{where}: {raw.error}")
            value = raw.value or {}
            fmt = sniff_benchmark_format(value)
            if fmt is None and "options" in value:  # a prompt-engine item missing its answer: say so
                fmt = "prompt_engine_mcqa"
            if fmt == "prompt_engine_open":
                continue
            open_ended = False
            item_id = str(value.get("id") or value.get("pubid") or raw.locator)
            if fmt is None:
                skipped.append(SkippedItem(item_id, f"unknown format (keys {sorted(value)})"))
                continue
            try:
                question, options, answer, context = _parse(value, fmt)
            except RowError as exc:
                skipped.append(SkippedItem(item_id, str(exc)))
                continue
            items.append(EvalItem(file.benchmark, file.subject, item_id, question, options, answer, context))
    return items, skipped, open_ended and not skipped


def load_benchmarks(
    folder: str | Path, split: str = "test", names: Sequence[str] = (), limit: int | None = None
) -> tuple[list[Benchmark], dict[str, str]]:
    """The benchmarks under ``folder`` (only ``names`` when given), and the excluded ones with why.

    ``limit`` keeps the first ``limit`` valid items of each benchmark (of each subject for MMLU), in file
    order, for quick runs.

    Raises:
        InputError: the folder is missing or empty, a name is not found, a file is unreadable, or a
            benchmark has no valid item.
    """
    files = discover(folder, split)
    wanted = set(names)
    unknown = wanted - {f.benchmark for f in files}
    if unknown:
        present = sorted({f.benchmark for f in files})
        raise InputError(f"{folder}: no {split} files for benchmark(s) {sorted(unknown)} (found: {present})")
    grouped: dict[str, list[BenchmarkFile]] = {}
    for file in files:
        if not wanted or file.benchmark in wanted:
            grouped.setdefault(file.benchmark, []).append(file)
    benchmarks: list[Benchmark] = []
    excluded: dict[str, str] = {}
    for name, members in grouped.items():
        items: list[EvalItem] = []
        skipped: list[SkippedItem] = []
        open_ended = True
        for file in members:
            file_items, file_skipped, file_open = _file_items(file)
            open_ended &= file_open
            items += file_items[:limit] if limit is not None else file_items
            skipped += file_skipped
        if open_ended and not items:
            excluded[name] = "open-ended (no options): not a multiple-choice benchmark"
            continue
        items, duplicates = _drop_duplicate_ids(items)
        skipped += duplicates
        if not items:
            raise InputError(
                f"benchmark {name} ({', '.join(str(f.path) for f in members)}): no valid item "
                f"({len(skipped)} skipped, e.g. {skipped[0].id}: {skipped[0].reason})"
            )
        benchmarks.append(Benchmark(name, split, [str(f.path) for f in members], items, skipped))
    return benchmarks, excluded


def _drop_duplicate_ids(items: Iterable[EvalItem]) -> tuple[list[EvalItem], list[SkippedItem]]:
    """Items whose (subject, id) occurs more than once are all skipped: which copy is right is unknown."""
    items = list(items)
    counts: dict[tuple[str | None, str], int] = {}
    for item in items:
        key = (item.subject, item.id)
        counts[key] = counts.get(key, 0) + 1
    kept = [i for i in items if counts[(i.subject, i.id)] == 1]
    dropped = [SkippedItem(i.id, "duplicate id") for i in items if counts[(i.subject, i.id)] > 1]
    return kept, dropped
