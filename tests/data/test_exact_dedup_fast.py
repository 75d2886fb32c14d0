"""The vectorised exact-dedup path against its per-row definitions.

* :func:`normalize_strings` equals :func:`normalize_for_matching` on adversarial and random strings, and
  the property its proof rests on (no canonical composition ends in ASCII or a plain separator) holds
  over every code point;
* :func:`normalized_matching_texts` equals ``normalize_for_matching(matching_text(row))`` on every row of
  the embedded corpus (sft and preference runs) and on hand-made MCQA / preference / mcqa-record rows;
* the ``exact_dedup`` stage drops exactly what a brute-force Python dedup drops (same ``duplicate_of``),
  on the corpus with extra planted duplicates, and keeps the input order.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core.config import validate_config
from aloe_core.schemas import MCQA_SCHEMA, PREFERENCE_SCHEMA, SFT_SCHEMA, dumps_meta, record_id, to_table
from aloe_core.text import matching_text, normalize_for_matching
from aloe_data.dedup.normalize import normalize_strings, plain_separators
from aloe_data.dedup.rows import matching_text_array, matching_texts, normalized_matching_texts
from aloe_data.pipeline.config import PipelineConfig
from aloe_data.pipeline.runner import run_pipeline
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage, answer_length
from aloe_fixtures.corpus import write_sample
from aloe_fixtures.demo import sample_pipeline

ADVERSARIAL = [
    "",
    " ",
    "...",
    "Metformin,  first-LINE!\u00a0",
    "ＡＢＣ １２３ ｆｕｌｌ－ｗｉｄｔｈ",  # full-width letters, digits and hyphen
    "ﬁle ﬂow ﬃ",  # ligatures
    "Straße STRASSE ẞ",  # casefold: ß -> ss, capital sharp s
    "İstanbul ıi I",  # Turkish dotted capital I (casefolds to i + combining dot), dotless i
    "ΟΔΥΣΣΕΥΣ ὀδυσσεύς σς",  # Greek final sigma (casefold, unlike lower, has no final-sigma rule)
    "a\u00a0b\u2007c\u202fd",  # NBSP, figure space, narrow NBSP (compatibility decompositions)
    "line\u2028break\u2029para\x85nel",  # Unicode line / paragraph separators, NEL
    "unit\x1cgroup\x1drecord\x1eunit\x1f!",  # ASCII file/group/record/unit separators (whitespace in Python)
    "tab\there\vvt\fff\rcr\nnl",
    "cafe\u0301 café e\u0301\u0323 \u0301start",  # combining marks (not \w in Python: they split words)
    "snake_case __dunder__ _",  # underscores are \w
    "37.5°C 120/80 mmHg ≥ 5 × 10⁹/L ½ ² ³",  # degree sign, symbols, superscripts, vulgar fraction
    "“quoted” ‘single’ – en — em … • · †",
    "emoji 😀 👍🏽 flags 🇪🇸 zwj 👩\u200d⚕️",
    "soft\u00adhyphen zero\u200bwidth non\u200cjoiner",
    "≮ <\u0338 ≠ =\u0338",  # a symbol that composes with a combining mark, decomposed and not
    "한국어 ᄀ ᅡ 가",  # Hangul syllables and conjoining jamo (which NFKC composes)
    "ǰ \u0345 Ⅻ ℃ ㎏ µ K Å",  # casefold expanding, ypogegrammeni, compatibility letters, Kelvin/Angstrom
    "日本語の文章。句読点、全角！",
    "العربية ١٢٣ עברית",
    "MiXeD   CaSe\t\t and   SPACES  ",
    "‿⁀ undertie (punctuation of category Pc, like _)",
]

# Random strings mix ASCII, plain separators and characters the kernel must hand to Python.
ALPHABET = (
    list("abcXYZ019_ .,;:!?-'\"()/\t\n\x0b\x0c\r\x1c\x1f\x7f")
    + list("°–—’“×±≤\u2028\u2029\x85\u00ad\u200b\u200d€§")
    + list("éÉßẞİıΣσςﬁＡ１\u00a0\u0301\u0338😀µ²½가ǰ\u0345‿ñ")
)


def brute_force_dedup(rows: list[dict]) -> dict[str, str]:
    """id -> duplicate_of by the definition: group on the normalised matching text, keep the longest
    answer, then the smallest id."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(normalize_for_matching(matching_text(row)), []).append(row)
    dropped = {}
    for members in groups.values():
        kept = min(members, key=lambda r: (-answer_length(r), r["id"]))
        dropped.update({r["id"]: kept["id"] for r in members if r is not kept})
    return dropped


def test_normalize_strings_on_adversarial_strings() -> None:
    expected = [normalize_for_matching(t) for t in ADVERSARIAL]
    assert normalize_strings(pa.array(ADVERSARIAL)).to_pylist() == expected
    assert normalize_strings(pa.array(ADVERSARIAL, pa.large_string())).to_pylist() == expected
    with_nulls = pa.array([None, *ADVERSARIAL, None])
    assert normalize_strings(with_nulls).to_pylist() == [None, *expected, None]
    chunked = pa.chunked_array([ADVERSARIAL[:7], ADVERSARIAL[7:]])
    assert normalize_strings(chunked).to_pylist() == expected
    assert normalize_strings(pa.array(ADVERSARIAL).slice(3, 9)).to_pylist() == expected[3:12]
    assert normalize_strings(pa.array([], pa.string())).to_pylist() == []


def test_normalize_strings_on_random_strings() -> None:
    rng = random.Random(0)
    texts = ["".join(rng.choices(ALPHABET, k=rng.randint(0, 30))) for _ in range(5000)]
    texts += ["".join(rng.choices(ALPHABET[:40], k=rng.randint(0, 60))) for _ in range(2000)]  # ASCII only
    assert normalize_strings(pa.array(texts)).to_pylist() == [normalize_for_matching(t) for t in texts]


def test_plain_separators_are_inert_under_nfkc_and_casefold() -> None:
    """What the kernel's proof needs from the tables, checked over every code point: no canonical
    decomposition pair (a possible composition) has an ASCII character or a plain separator second, and
    each plain separator is unchanged by NFKC and casefold alone and next to any ASCII character."""
    plain = plain_separators()
    for cp in range(0x110000):
        decomposition = unicodedata.decomposition(chr(cp))
        if decomposition and not decomposition.startswith("<"):
            parts = [int(p, 16) for p in decomposition.split()]
            if len(parts) == 2:
                assert parts[1] >= 0x80 and not (parts[1] < 0x10000 and plain[parts[1]]), hex(cp)
    separators = [chr(cp) for cp in range(0x10000) if plain[cp]]
    assert len(separators) > 3000 and "°" in separators and "\u00a0" not in separators
    for char in separators:
        for neighbour in ("a", "Z", "<", "_", " "):
            for text in (char + neighbour, neighbour + char):
                assert unicodedata.normalize("NFKC", text) == text
        assert normalize_for_matching(f"a{char}b") == "a b"


def _mcqa_row(n: int, question: str, options: list[str], answer: str = "A") -> dict:
    item = {
        "question": question,
        "options": [{"letter": "ABCDE"[i], "text": t} for i, t in enumerate(options)],
        "answer": answer,
        "context": None,
        "explanation": None,
    }
    return {
        "id": record_id("sft", "hand", item, str(n)),
        "source": "hand",
        "task": "mcqa",
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        "mcqa": item,
        "meta": dumps_meta({"n": n}),
    }


def _preference_row(n: int, prompt: list[str], chosen: str) -> dict:
    return {
        "id": f"p{n}",
        "source": "hand",
        "prompt": [{"role": "user", "content": p} for p in prompt],
        "chosen": chosen,
        "rejected": "no",
        "meta": dumps_meta({"n": n}),
    }


def test_matching_texts_on_hand_made_rows() -> None:
    rng = random.Random(1)
    options = ["Ｂeta-blocker", "ACE inhibitor", "ace INHIBITOR!", "", "Diurétique", "ß", "ss", "_x_"]
    mcqa = []
    for n in range(40):
        picked = rng.sample(options, k=rng.randint(0, 5))
        mcqa.append(_mcqa_row(n, rng.choice(ADVERSARIAL), picked))
    mcqa[0]["mcqa"]["options"] = None  # counts as no options
    sft = pa.Table.from_pylist(mcqa[:20], schema=SFT_SCHEMA)
    more = pa.Table.from_pylist(mcqa[20:], schema=SFT_SCHEMA)
    sliced = pa.concat_tables([sft, more]).slice(5, 30)  # non-zero offsets into the list arrays
    plain = pa.Table.from_pylist([dict(r, mcqa=None, task="chat") for r in mcqa], schema=SFT_SCHEMA)
    records = pa.Table.from_pylist(
        [r["mcqa"] | {"id": r["id"], "source": "hand", "meta": "{}"} for r in mcqa[1:]], schema=MCQA_SCHEMA
    )
    preference = pa.Table.from_pylist(
        [_preference_row(n, rng.sample(ADVERSARIAL, k=n % 3), rng.choice(ADVERSARIAL)) for n in range(30)],
        schema=PREFERENCE_SCHEMA,
    )
    # Every row an item, none, and both in one batch (the vectorised path picks per row only then).
    mixed = pa.concat_tables([sft.slice(0, 7), plain.slice(7, 10), sft.slice(17, 3)])
    for table in (sft, sliced, plain, mixed, records, preference):
        rows = table.to_pylist()
        assert matching_texts(table) == [matching_text(r) for r in rows]
        expected = [normalize_for_matching(matching_text(r)) for r in rows]
        assert normalized_matching_texts(table).to_pylist() == expected


def test_matching_texts_fail_like_the_definition_on_null_option_text() -> None:
    row = _mcqa_row(0, "Q?", ["a", "b"])
    row["mcqa"]["options"][1]["text"] = None
    with pytest.raises(TypeError):
        matching_text_array(pa.Table.from_pylist([row], schema=SFT_SCHEMA))


@pytest.fixture(scope="module")
def corpus(ray_session, tmp_path_factory) -> dict[str, Path]:
    """The embedded corpus (2,000 rows) ingested as sft and preference runs: kind -> ingest folder."""
    root = tmp_path_factory.mktemp("exact-fast")
    write_sample(root / "sample", rows=2000, seed=0)
    folders = {}
    for kind in ("sft", "preference"):
        raw = sample_pipeline(root / "sample", kind, stages=[])
        run_pipeline(validate_config(PipelineConfig, raw), root / kind)
        folders[kind] = root / kind / "01-ingest"
    return folders


def _read(folder: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("*.parquet"))])


@pytest.mark.parametrize("kind", ["sft", "preference"])
def test_normalized_matching_texts_on_the_corpus(corpus, kind) -> None:
    table = _read(corpus[kind])
    rows = table.to_pylist()
    assert matching_texts(table) == [matching_text(r) for r in rows]
    expected = [normalize_for_matching(matching_text(r)) for r in rows]
    assert normalized_matching_texts(table).to_pylist() == expected
    assert any(not t.isascii() for t in expected)  # the Python path is exercised too


def _variant(row: dict, n: int, kind: str) -> dict:
    """A copy of ``row`` under a new id that normalises to the same matching text (case, punctuation,
    full-width letters, option order) with an answer of another length, or the same one."""
    copy = {**row, "id": record_id(kind, "planted", {"of": row["id"]}, str(n))}
    if kind == "preference":
        return copy | {"chosen": row["chosen"].upper() + " !!", "prompt": [dict(m) for m in row["prompt"]]}
    if row["mcqa"] is not None:
        item = dict(row["mcqa"])
        item["options"] = [dict(o, letter="ABCDEFGH"[i]) for i, o in enumerate(reversed(item["options"]))]
        item["question"] = "  " + item["question"].upper() + " ??"
        return copy | {"mcqa": item}
    messages = [dict(m) for m in row["messages"]]
    first = messages[0]["content"]
    wide = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in first[:10])
    messages[0]["content"] = wide + first[10:].replace(" ", "  ")
    if n % 2:
        messages[-1]["content"] = messages[-1]["content"] + "..."  # same text, longer answer
    return copy | {"messages": messages}


@pytest.mark.parametrize("kind", ["sft", "preference"])
def test_stage_drops_what_brute_force_drops(corpus, kind, tmp_path) -> None:
    rows = _read(corpus[kind]).to_pylist()
    planted = [_variant(row, n, kind) for n, row in enumerate(rows[::9])]
    rows = rows + planted + [dict(planted[0], id=record_id(kind, "planted", {}, "again"))]
    rng = random.Random(2)
    rng.shuffle(rows)
    source = tmp_path / "in"
    source.mkdir()
    pq.write_table(to_table(rows, kind), source / "part-0.parquet")
    expected = brute_force_dedup(rows)
    assert len(expected) > 0.9 * len(planted)  # these variants (nearly all still match), plus the corpus's
    entry = run_stage_on_files(ExactDedupStage(ExactDedupConfig()), source, tmp_path / "out", ray_cpus=2)
    dropped = _read(tmp_path / "out" / "_dropped").to_pylist()
    assert {r["id"]: r["duplicate_of"] for r in dropped} == expected
    assert {r["drop_reason"] for r in dropped} == {"exact_duplicate"}
    assert entry["dropped"] == {"exact_duplicate": len(expected)}
    kept = [r["id"] for r in _read(tmp_path / "out").to_pylist()]
    assert kept == [r["id"] for r in rows if r["id"] not in expected]  # input order
