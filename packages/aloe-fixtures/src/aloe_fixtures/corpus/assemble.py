"""Build every file's rows (clean + planted), order them, and turn them into records and ground truth."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aloe_fixtures.corpus.defects import KINDS
from aloe_fixtures.corpus.formats import (
    BENCHMARK_FILE,
    JSON_OBJECT_FILES,
    medmcqa_id,
    to_record,
    write_json_object,
    write_jsonl,
)
from aloe_fixtures.corpus.items import ChatItem, Item, McqaItem, PreferenceItem, word_count
from aloe_fixtures.corpus.multilingual import LANGUAGE_CODES
from aloe_fixtures.corpus.mutate import (
    answer_target,
    get_text,
    near_duplicate,
    question_target,
    set_text,
    surface_variant,
)
from aloe_fixtures.corpus.phrasing import pick
from aloe_fixtures.corpus.plant import plant_empty, plant_pii, plant_repeat, plant_short, plant_too_long
from aloe_fixtures.corpus.sample import (
    Generator,
    Row,
    benchmark_records,
    benchmark_size,
    non_english_item,
)


@dataclass
class Corpus:
    benchmark: list[McqaItem]
    files: dict[str, list[Row]]
    defects: list[dict[str, Any]]

    def write(self, out_dir: Path) -> None:
        write_json_object(out_dir / BENCHMARK_FILE, benchmark_records(self.benchmark))
        self.defects.clear()
        for path, rows in self.files.items():
            records, truth = _records(path, rows)
            if path in JSON_OBJECT_FILES:
                write_json_object(out_dir / path, records)  # type: ignore[arg-type]
            else:
                write_jsonl(out_dir / path, records)  # type: ignore[arg-type]
            self.defects.extend(truth)


def build_corpus(gen: Generator, sizes: dict[str, int], plan: dict[str, dict[str, int]]) -> Corpus:
    """Benchmark first, then each file's rows (see :mod:`aloe_fixtures.corpus.sample` for the order)."""
    leaks = {f: plan[f]["benchmark_leak"] for f in plan}
    bench = gen.benchmark(benchmark_size(sum(sizes.values()), sum(leaks.values())))
    assignment = _assign_leaks(gen.rng("leaks"), bench, leaks)
    files = {
        path: _build_file(gen, path, n, plan[path], bench, assignment[path]) for path, n in sizes.items()
    }
    return Corpus(bench, files, [])


def _assign_leaks(rng: random.Random, bench: list[McqaItem], leaks: dict[str, int]) -> dict[str, list[int]]:
    """Distinct benchmark items per file; MedMCQA takes 4-option items (its format has four options)."""
    four = [i for i, b in enumerate(bench) if len(b.options) == 4]
    rng.shuffle(four)
    out = {f: [] for f in leaks}
    out["medmcqa/train.jsonl"] = four[: leaks.get("medmcqa/train.jsonl", 0)]
    taken = set(out["medmcqa/train.jsonl"])
    rest = [i for i in range(len(bench)) if i not in taken]
    rng.shuffle(rest)
    for f, n in leaks.items():
        if f != "medmcqa/train.jsonl":
            out[f], rest = rest[:n], rest[n:]
    # Holds by construction: the benchmark has at least as many items as leaks, half of them 4-option.
    assert all(len(out[f]) == n for f, n in leaks.items()), (leaks, len(bench), len(four))
    return out


def _build_file(
    gen: Generator, path: str, size: int, kinds: dict[str, int], bench: list[McqaItem], leak_ids: list[int]
) -> list[Row]:
    rng, order = gen.rng(path), gen.rng(path, "order")
    n_clean = size - sum(kinds.values())
    clean = [Row(item, order.random()) for item in gen.fresh_many(path, rng, n_clean)]
    free = list(range(n_clean))
    rng.shuffle(free)
    rows = list(clean)
    rows += _exact_duplicates(rng, order, [clean[i] for i in free[: kinds["exact_duplicate"]]])
    rest = [clean[i] for i in free[kinds["exact_duplicate"] :]]
    # Long rows first (in random order): one edit in a short text already drops the Jaccard below the range.
    long_first = [r for r in rest if word_count(r.item) >= LONG_ENOUGH] + [
        r for r in rest if word_count(r.item) < LONG_ENOUGH
    ]
    rows += _near_duplicates(rng, order, long_first, kinds["near_duplicate"], path)
    rows += [_leak(rng, order, bench, i) for i in leak_ids]
    plain = [(kind, j) for kind in KINDS[3:] if kind != "non_english" for j in range(kinds[kind])]
    bases = gen.fresh_many(path, rng, len(plain))
    rows += [
        _single(gen, rng, order, path, kind, j, base) for (kind, j), base in zip(plain, bases, strict=True)
    ]
    rows += _non_english(gen, rng, order, path, kinds["non_english"])
    return rows


def _non_english(gen: Generator, rng: random.Random, order: random.Random, path: str, n: int) -> list[Row]:
    """``n`` rows written in Spanish, French, German, Italian or Portuguese (round robin from a random "
    "start)."""
    start = rng.randrange(len(LANGUAGE_CODES))
    langs = [LANGUAGE_CODES[(start + j) % len(LANGUAGE_CODES)] for j in range(n)]
    queue = iter(langs)
    made: dict[int, str] = {}

    def make() -> Item:
        lang = next(queue, None) or pick(rng, LANGUAGE_CODES)
        item = non_english_item(path, rng, lang)
        made[id(item)] = lang
        return item

    items = gen.guarded_many(make, n)
    return [Row(item, order.random(), "non_english", {"lang": made[id(item)]}) for item in items]


LONG_ENOUGH = 100  # matching-text words above which one edit keeps the Jaccard near 0.9


def _after(order: random.Random, row: Row) -> float:
    """A sort key after ``row``'s, so a duplicate always comes later in the file than its original."""
    return row.key + (1.0 - row.key) * (0.001 + 0.999 * order.random())


def _exact_duplicates(rng: random.Random, order: random.Random, originals: list[Row]) -> list[Row]:
    out = []
    for i, orig in enumerate(originals):
        verbatim = i % 2 == 0
        item = orig.item if verbatim else _surface_copy(rng, orig.item)
        out.append(
            Row(
                item,
                _after(order, orig),
                "exact_duplicate",
                {"variant": "verbatim" if verbatim else "case_space_punctuation"},
                original=orig,
            )
        )
    return out


def _surface_copy(rng: random.Random, item: Item) -> Item:
    target = question_target(item)
    item = set_text(item, target, surface_variant(rng, get_text(item, target)))
    if isinstance(item, ChatItem | PreferenceItem) and rng.random() < 0.5:
        target = answer_target(item)
        item = set_text(item, target, surface_variant(rng, get_text(item, target)))
    return item


def _near_duplicates(
    rng: random.Random, order: random.Random, pool: list[Row], k: int, path: str
) -> list[Row]:
    out: list[Row] = []
    for orig in pool:
        if len(out) == k:
            break
        made = near_duplicate(rng, orig.item)
        if made is not None:
            item, score, method = made
            info = {"method": method, "jaccard": score}
            out.append(Row(item, _after(order, orig), "near_duplicate", info, original=orig))
    if len(out) < k:
        raise RuntimeError(
            f"{path}: only {len(out)} of {k} near duplicates could be made; raise rows or lower "
            f"DefectRates.near_duplicate"
        )
    return out


def _leak(rng: random.Random, order: random.Random, bench: list[McqaItem], index: int) -> Row:
    item = bench[index]
    variant = "verbatim"
    if rng.random() < 0.5:
        item = replace(item, question=surface_variant(rng, item.question, punctuation=False))
        variant = "case_space"
    reordered = rng.random() < 0.5
    if reordered:
        perm = list(range(len(item.options)))
        while perm == sorted(perm):
            rng.shuffle(perm)
        item = item.reordered(perm)
    info = {
        "benchmark_file": BENCHMARK_FILE,
        "benchmark_id": f"aloebench-{index:05d}",
        "variant": variant,
        "options_reordered": reordered,
    }
    return Row(item, order.random(), "benchmark_leak", info)


def _single(
    gen: Generator, rng: random.Random, order: random.Random, path: str, kind: str, j: int, base: Item
) -> Row:
    """A fresh guarded row (``base``) made to carry one single-row defect."""
    info: dict[str, Any] = {}
    edit = None
    if kind.startswith("pii_"):
        item, value, target = plant_pii(rng, base, kind[4:])
        info = {"value": value, "field": _field_name(path, target)}
    elif kind == "empty_answer":
        item = plant_empty(rng, base)  # type: ignore[arg-type]
    elif kind == "short_answer":
        item = plant_short(rng, base)
    elif kind == "answer_repeats_question":
        item = plant_repeat(rng, base)
    elif kind == "too_long":
        item = plant_too_long(rng, base)  # the added review holds fact sentences only: no benchmark 13-grams
    else:
        item = base
        reason, edit = _malformed(rng, path, j)
        info = {"reason": reason}
    return Row(item, order.random(), kind, info, record_edit=edit)


def _field_name(path: str, target: str) -> str:
    """The record field a target lands in, for the ground truth (e.g. 'QUESTION', 'messages[3].content')."""
    if target.startswith("msg:"):
        i = int(target[4:])
        return {
            "chat/openai.jsonl": f"messages[{i}].content",
            "chat/sharegpt.jsonl": f"conversations[{i}].value",
            "chat/alpaca.jsonl": "instruction" if i == 0 else "output",
        }[path]
    if path == "pubmedqa/ori_pqal.json":
        return {"question": "QUESTION", "long_answer": "LONG_ANSWER"}[target]
    return target


def _truncate(rng: random.Random) -> Callable[[dict[str, Any]], str]:
    def edit(record: dict[str, Any]) -> str:
        line = json.dumps(record, ensure_ascii=False)
        return line[: int(len(line) * rng.uniform(0.3, 0.8))]

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda record: {k: v for k, v in record.items() if k != key}


def _set(key: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda record: {**record, key: value(record[key])}


MALFORMED: dict[str, tuple[tuple[str, Callable[..., Any]], ...]] = {
    "medmcqa/train.jsonl": (
        ("missing_field:question", lambda: _drop("question")),
        ("invalid_value:cop", lambda: _set("cop", lambda _: 7)),
    ),
    "medqa/train.jsonl": (
        ("missing_field:question", lambda: _drop("question")),
        ("wrong_type:options", lambda: _set("options", lambda o: list(o.values()))),
        ("invalid_value:answer_idx", lambda: _set("answer_idx", lambda _: "Z")),
    ),
    "chat/openai.jsonl": (
        ("missing_field:messages", lambda: _drop("messages")),
        ("wrong_type:messages", lambda: _set("messages", lambda m: m[-1]["content"])),
    ),
    "chat/sharegpt.jsonl": (
        ("missing_field:conversations", lambda: _drop("conversations")),
        ("wrong_type:conversations", lambda: _set("conversations", lambda c: c[0])),
    ),
    "chat/alpaca.jsonl": (
        ("missing_field:instruction", lambda: _drop("instruction")),
        ("wrong_type:output", lambda: _set("output", lambda o: [o])),
    ),
    "preference/pairs.jsonl": (
        ("missing_field:chosen", lambda: _drop("chosen")),
        ("wrong_type:chosen", lambda: _set("chosen", lambda _: 42)),
    ),
}


def _malformed(rng: random.Random, path: str, j: int) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    """Reason j cycles through a truncated line and the file's invalid-row variants."""
    options = (("truncated_json", lambda: _truncate(rng)), *MALFORMED[path])
    reason, make = options[j % len(options)]
    return reason, make()


# -- ordering, records and ground truth -----------------------------------------------------------------


def _records(path: str, rows: list[Row]) -> tuple[list[Any] | dict[str, Any], list[dict[str, Any]]]:
    ordered = sorted(enumerate(rows), key=lambda pair: (pair[1].key, pair[0]))
    id_rng = random.Random(f"aloe-corpus-ids:{path}:{len(rows)}")
    locators: dict[int, str | int] = {}
    records: dict[str, Any] = {}
    lines: list[Any] = []
    for pos, (_, row) in enumerate(ordered):
        locator, row_id = _locator(path, pos, id_rng)
        locators[id(row)] = locator
        record: Any = to_record(path, row.item, row_id)
        if row.record_edit is not None:
            record = row.record_edit(record)
        if path in JSON_OBJECT_FILES:
            records[str(locator)] = record
        else:
            lines.append(record)
    truth = [_truth(path, row, locators) for _, row in ordered if row.kind]
    return (records if path in JSON_OBJECT_FILES else lines), truth


def _locator(path: str, pos: int, id_rng: random.Random) -> tuple[str | int, str]:
    if path == "prompt_engine/sample_mcqa.json":
        uid = f"pe-{pos:06d}"
        return uid, uid
    if path == "pubmedqa/ori_pqal.json":
        pmid = str(30_000_000 + 7 * pos + 3)
        return pmid, pmid
    row_id = medmcqa_id(id_rng.getrandbits(128)) if path == "medmcqa/train.jsonl" else ""
    return pos + 1, row_id


def _truth(path: str, row: Row, locators: dict[int, str | int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": path, "row": locators[id(row)], "kind": row.kind, **row.info}
    if row.original is not None:
        entry["of"] = {"file": path, "row": locators[id(row.original)]}
    if "jaccard" in entry:  # computed on the item's matching text, which equals the written record's
        entry["jaccard"] = entry.pop("jaccard")  # keep it last in the entry, after "of"
    return entry
