"""The batched ``clean`` stage gives the same table as the per-row one it replaced (clean_reference.py), on
the embedded corpus and on hand-made strings chosen where RE2, Python and langid.py could part ways, for
every config variant that changes what runs; and the pieces it is built from keep their promises
(character classes equal Python's, prefilters are supersets, language bounds hold the exact score)."""

from __future__ import annotations

import itertools
import random
import re
import sys
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from clean_reference import ReferenceClean
from clean_reference import language_scores as reference_language_scores
from clean_reference import normalize_text as reference_normalize_text
from corpus_tables import corpus_tables

from aloe_core.schemas import dumps_meta
from aloe_core.text import normalize_for_matching
from aloe_data.pipeline.annotations import annotated_schema
from aloe_data.stages import pii
from aloe_data.stages.arrow_text import (
    digit_class,
    may_change_under,
    python_class,
    utf8_buffers,
    whitespace_class,
)
from aloe_data.stages.clean import (
    _CANDIDATE_LANGUAGES,
    _CONTROL,
    _DELETE_RE2,
    _INVISIBLE,
    _ODD_SPACE,
    CleanConfig,
    CleanStage,
    normalize_text,
    normalize_texts,
)
from aloe_data.stages.language import exact_score, language_bounds, language_scores

# Strings where the fast paths could go wrong: Unicode whitespace and invisibles, line endings, blank
# lines, compatibility and combining characters, PII at string edges and look-alikes, foreign scripts.
ODD = [
    "",
    " ",
    "\n",
    "\u00a0",
    "a\u00a0\u00a0b",
    "x\u2028y\u2029z",
    "x\x85y",
    "zero\u200bwidth\u200c\u200d\u2060\ufeff\u00adsoft",
    "e\u200b\u0301 accent split by a zero-width space",
    "line1\r\nline2\rline3\r\n",
    "\ttabbed\t\tline \t",
    "para\n\n\n\npara",
    "para\n \n\t\n \npara",
    "  lead and trail  ",
    " \n\n  \n",
    "full-width ＡＢＣ１２３ and ｈｔｔｐｓ：／／ｘ．ｏｒｇ",
    "combining e\u0301 vs é and cafe\u0301",
    "m² µg ﬁ ligature Å K",
    "\x00ctrl\x07\x1f\x7f chars",
    "\x1c\x1d\x1e\x1f separators",
    "\x0b\x0c vertical tab and form feed",
    "\u3000ideographic\u3000space\u3000",
    "\u2003em\u2009thin\u202fnarrow\u205fmath\u1680ogham",
    "email@example.com",
    "Mail a.b@c.org.",
    "é@é.com and ü.x@y.de",
    "https://x.org/a?b=1",
    "see www.example.com/page.",
    "HTTPS://EXAMPLE.COM/X",
    "httpſ://long-s.org/x",
    "(555) 013-2876",
    "+34 612 345 678",
    "call 555-013-2876x now",
    "tel 555.013.2876.",
    "Sodium 135-145 mEq/L, pH 7.35-7.45, 500 mg, 2020-2024.",
    "٥٥٥ ٠١٣ ٢٨٧٦ arabic-indic digits",
    "１２３ ４５６ ７８９０ full-width digits",
    "phone\u00a0555\u00a0013\u00a02876",
    "ends with 12 345\n6789",
    "12 345",
    "6789 starts a line",
    "ALL UPPER CASE TEXT ANSWER ABOUT METFORMIN",
    "ÉCOLE MAJUSCULE ÉTUDE CLINIQUE",
    "x",
    "ab",
    "a b",
    "İstanbul ß ǅ ﬀ",
    "El paciente tiene fiebre y dolor abdominal desde hace tres días.",
    "Le patient présente une douleur thoracique depuis deux heures.",
    "Der Patient hat seit drei Tagen Fieber und Husten.",
    "Пациент жалуется на боль в груди и одышку.",
    "患者主诉胸痛和呼吸困难三天。",
    "患者は三日前から発熱と咳があります。",
    "يشكو المريض من ألم في الصدر وضيق في التنفس.",
    "रोगी को तीन दिनों से बुखार और खांसी है।",
    "The patient (paciente) tiene fiebre since yesterday.",
    "Metformin lowers hepatic glucose output.",
]

ENGLISH_Q = "Which drug is first line for type 2 diabetes in adults?"
ENGLISH_A = "Metformin lowers hepatic glucose output and is the usual first-line drug."


def _sft(n: int, messages: list[tuple[str, str]], mcqa: dict | None = None, **extra) -> dict:
    return {
        "id": f"row-{n}",
        "source": "hand",
        "task": "chat",
        "messages": [{"role": role, "content": content} for role, content in messages],
        "mcqa": mcqa,
        "meta": dumps_meta({"n": n}),
        "drop_reason": None,
        "drop_detail": None,
        **extra,
    }


def _odd_sft_rows() -> list[dict]:
    rows = []
    k = len(ODD)
    for i, text in enumerate(ODD):
        other = ODD[(i * 7 + 3) % k]
        rows.append(_sft(len(rows), [("user", text), ("assistant", ENGLISH_A + " " + text)]))
        rows.append(_sft(len(rows), [("system", other), ("user", ENGLISH_Q), ("assistant", text)]))
        item = {
            "question": text,
            "options": [{"letter": "A", "text": other}, {"letter": "B", "text": text}],
            "answer": "A",
            "context": text if i % 2 else None,
            "explanation": None if i % 3 else other,
        }
        rows.append(_sft(len(rows), [("user", text + "\n" + other), ("assistant", "A. " + other)], item))
    # Answers that repeat their question, up to case, punctuation, spacing and compatibility forms.
    repeats = [
        ("Does aspirin inhibit COX?", "does aspirin inhibit cox"),
        ("Does aspirin inhibit COX?", "Ｄｏｅｓ ａｓｐｉｒｉｎ ｉｎｈｉｂｉｔ ＣＯＸ"),
        ("Is the ﬁnding benign?", "is the finding benign"),
        ("Is it café\u0301?", "is it cafe\u0301\u0301"),
        ("What is Kelvin?", "what is kelvin"),
        ("Is this the answer?", "Is this the answer? Yes, it is."),
        ("Ist es Straße?", "ist es strasse"),
        ("Repeat", "repeat"),
    ]
    for question, answer in repeats:
        rows.append(_sft(len(rows), [("user", question), ("assistant", answer)]))
        rows.append(
            _sft(
                len(rows),
                [("user", ENGLISH_Q), ("assistant", ENGLISH_A), ("user", question), ("assistant", answer)],
            )
        )
    rows.append(_sft(len(rows), [("user", ENGLISH_Q), ("assistant", "x" * 30_000)]))
    malformed = _sft(
        len(rows), [("user", "Email me at a@b.org"), ("assistant", "  ")], drop_reason="malformed"
    )
    malformed["drop_detail"] = "row 7: broken"
    rows.append(malformed)
    rows.append({**_sft(len(rows), []), "messages": None, "drop_reason": "malformed", "drop_detail": "$: no"})
    rows.append(_sft(len(rows), [("user", ENGLISH_Q), ("assistant", ENGLISH_A)], drop_detail="stale detail"))
    return rows


def _odd_preference_rows() -> list[dict]:
    rows = []
    k = len(ODD)
    for i, text in enumerate(ODD):
        other = ODD[(i * 5 + 1) % k]
        rows.append(
            {
                "id": f"pref-{i}",
                "source": "hand",
                "prompt": [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": other},
                    {"role": "user", "content": ENGLISH_Q},
                ],
                "chosen": text if i % 2 else ENGLISH_A + " " + text,
                "rejected": other,
                "meta": dumps_meta({"n": i}),
                "drop_reason": None,
                "drop_detail": None,
            }
        )
    return rows


@pytest.fixture(scope="module")
def odd_tables() -> dict[str, pa.Table]:
    return {
        "sft": pa.Table.from_pylist(_odd_sft_rows(), schema=annotated_schema("sft")),
        "preference": pa.Table.from_pylist(_odd_preference_rows(), schema=annotated_schema("preference")),
    }


@pytest.fixture(scope="module")
def corpus() -> dict[str, pa.Table]:
    return corpus_tables(1500, seed=3)


def _assert_same(config: CleanConfig, table: pa.Table, kind: str, batch: int = 1024) -> None:
    fast, reference = CleanStage(config), ReferenceClean(config)
    for start in range(0, max(table.num_rows, 1), batch):
        part = table.slice(start, batch)
        got, want = fast.process(part, kind), reference.process(part, kind)
        assert got.schema == want.schema
        for name in want.column_names:
            assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
        assert got.equals(want)


def _variants() -> list[dict]:
    """Every pii_action x unicode_form x normalize_whitespace, then one change at a time of the rest."""
    base = [
        {"pii_action": action, "unicode_form": form, "normalize_whitespace": ws}
        for action, form, ws in itertools.product(
            ("mask", "remove", "drop", "keep"), ("NFC", "NFKC", "none"), (True, False)
        )
    ]
    return [
        *base,
        {"languages": ()},
        {"languages": ("en", "es")},
        {"languages": ("es", "fr", "de"), "min_language_confidence": 0.9},
        {"languages": ("en",), "min_language_confidence": 0.0},
        {"languages": ("en",), "min_language_confidence": 1.0},
        {"languages": ("sr", "en"), "candidate_languages": ("en", "sr", "uz", "ru", "es")},  # aliased labels
        {"pii_kinds": ("phone",)},
        {"pii_kinds": ("url", "email"), "pii_action": "drop"},
        {"pii_kinds": ()},
        {"min_answer_chars": 0, "drop_empty_answers": False},
        {"min_answer_chars": 40},
        {"min_answer_chars": 1500},
        {"max_chars": 120},
        {"drop_answer_repeats_question": False},
    ]


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_odd_strings_match_the_reference(odd_tables, variant):
    config = CleanConfig(**variant)
    for kind, table in odd_tables.items():
        _assert_same(config, table, kind)


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"pii_action": "drop", "unicode_form": "NFKC"},
        {"pii_action": "remove", "normalize_whitespace": False},
        {"languages": ("en", "es")},
    ],
    ids=str,
)
def test_corpus_matches_the_reference(corpus, variant):
    config = CleanConfig(**variant)
    for kind, table in corpus.items():
        _assert_same(config, table, kind, batch=512)


def test_input_layouts_match_the_reference(odd_tables):
    """Sliced and multi-chunk input, columns out of order, annotation columns missing, an extra column."""
    table = odd_tables["sft"]
    chunked = pa.concat_tables([table.slice(0, 50), table.slice(50)]).slice(3)
    _assert_same(CleanConfig(), chunked, "sft")
    live = table.filter(pc.is_null(table.column("drop_reason")))
    bare = live.drop_columns(["drop_reason", "drop_detail"]).select(
        ["meta", "messages", "id", "source", "task", "mcqa"]
    )
    _assert_same(CleanConfig(), bare, "sft")
    extra = table.append_column("score", pa.array(np.arange(table.num_rows, dtype=np.float64)))
    _assert_same(CleanConfig(), extra, "sft")
    _assert_same(CleanConfig(), table.slice(0, 0), "sft")
    dropped = table.set_column(
        table.column_names.index("drop_reason"), "drop_reason", pa.array(["x"] * len(table))
    )
    _assert_same(CleanConfig(pii_action="drop"), dropped, "sft")  # nothing left to judge
    rows = [r for r in _odd_sft_rows() if r["drop_reason"] is None]
    for row in rows:
        row["messages"][-1]["content"] = " \n "
    _assert_same(CleanConfig(), pa.Table.from_pylist(rows, schema=annotated_schema("sft")), "sft")


def test_unsupported_kind_is_an_error(odd_tables):
    with pytest.raises(ValueError, match="sft and preference"):
        CleanStage(CleanConfig()).process(odd_tables["sft"], "mcqa")


def _all_chars() -> pa.Array:
    return pa.array([chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF], pa.string())


def _re2_set(chars: pa.Array, pattern: str) -> set[str]:
    return set(chars.filter(pc.match_substring_regex(chars, pattern)).to_pylist())


def test_re2_classes_are_pythons():
    chars = _all_chars()
    every = chars.to_pylist()
    deleted = {c for c in every if _INVISIBLE.match(c) or _CONTROL.match(c)}
    assert _re2_set(chars, _DELETE_RE2) == deleted
    assert _re2_set(chars, whitespace_class()) == {c for c in every if re.match(r"\s", c)}
    assert _re2_set(chars, whitespace_class()) == {c for c in every if c.isspace()}  # str.strip's set
    assert _re2_set(chars, digit_class()) == {c for c in every if re.match(r"\d", c)}
    odd = {c for c in every if c.isspace() and c not in " \t\n\r" and not _CONTROL.match(c)}
    assert _re2_set(chars, python_class(_ODD_SPACE)) == odd
    assert _re2_set(chars, python_class(r"[\s.\-]")) == {c for c in every if re.match(r"[\s.-]", c)}
    # The URL prefilter looks for "://" and "www." as [wW]{3}\.: IGNORECASE folds no other character to
    # any of these.
    for literal, folded in {"w": {"w", "W"}, ":": {":"}, "/": {"/"}, ".": {"."}}.items():
        assert {c for c in every if re.fullmatch(re.escape(literal), c, re.IGNORECASE)} == folded


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_strings_without_unstable_characters_are_normalised(form):
    """Unicode's quick check: no character that changes alone, combines or composes with the previous one
    means the string is in normal form. Checked on every such character and on random strings of them
    mixed with letters that start compositions."""
    chars = _all_chars()
    stable = chars.filter(pc.invert(pc.match_substring_regex(chars, may_change_under(form)))).to_pylist()
    assert all(unicodedata.is_normalized(form, c) for c in stable)
    rng = random.Random(0)
    starters = [c for c in "aeiouAEIOUcnsyzCNSYZ" + "ăâêôơưåæøçñ" + "\u0915\u09c7\u0b47\u1100\uac00"]
    pool = stable[:2000] + rng.sample(stable, 5000) + starters * 50
    for _ in range(20_000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(2, 6)))
        assert unicodedata.is_normalized(form, text), ascii(text)


@pytest.mark.parametrize("form", ["NFC", "NFKC", "none"])
@pytest.mark.parametrize("whitespace", [True, False])
def test_normalize_texts_is_normalize_text(form, whitespace):
    config = CleanConfig(unicode_form=form, normalize_whitespace=whitespace)
    texts = ODD + [a + b for a, b in itertools.product(ODD[:25], ODD[:25])] + [None]
    got = normalize_texts(pa.array(texts, pa.string()), config).to_pylist()
    assert got == [None if t is None else reference_normalize_text(t, config) for t in texts]
    assert [normalize_text(t, config) for t in texts[:-1]] == got[:-1]


def test_pii_arrays_are_the_per_string_functions():
    texts = ODD + [a + " " + b for a, b in itertools.product(ODD[20:45], ODD[20:45])]
    array = pa.array(texts, pa.string())
    kinds = ("email", "url", "phone")
    for action in ("mask", "remove"):
        scrubbed, hits = pii.scrub_pii_array(array, kinds, action)
        expected = [pii.scrub_pii(t, kinds, action) for t in texts]
        assert scrubbed.to_pylist() == [t for t, _ in expected]
        assert hits.tolist() == [[h.get(k, 0) for k in kinds] for _, h in expected]
    found = pii.find_pii_array(array, ("phone", "url"))
    assert found.tolist() == [
        [len(pii.find_pii(t, ("phone", "url")).get(k, [])) for k in ("phone", "url")] for t in texts
    ]
    assert found.any() and not found.all()


def test_language_bounds_hold_the_exact_score(corpus):
    sft = corpus["sft"]
    rows = sft.filter(pc.is_null(sft.column("drop_reason"))).column("messages").to_pylist()
    texts = (
        ["\n".join(m["content"] for m in messages) for messages in rows] + [t for t in ODD] + ["", "123 456"]
    )
    for languages, candidates in [
        (("en",), _CANDIDATE_LANGUAGES),
        (("es", "fr"), _CANDIDATE_LANGUAGES),
        (("sr",), ("sr", "uz", "en")),
    ]:
        lo, hi = language_bounds(pa.array(texts, pa.string()), languages, candidates)
        exact = np.array(reference_language_scores(texts, languages, candidates))
        assert ((lo <= exact) & (exact <= hi)).all()
        settled = (lo >= 0.5) | ((hi < 0.5) & (np.round(lo, 3) == np.round(hi, 3)))
        assert settled.mean() > 0.95  # the bounds decide almost every row by themselves
        assert language_scores(texts[:50], languages, candidates) == exact[:50].tolist()
        assert exact_score(texts[-1], languages, candidates) == exact[-1]


def test_may_match_never_misses_a_repeat():
    """Wherever the kernel rules a pair out, normalize_for_matching really differs."""
    from aloe_data.stages.clean_kernels import may_match

    texts = [
        *ODD,
        "does aspirin inhibit cox",
        "Does aspirin inhibit COX?",
        "ＤＯＥＳ aspirin",
        "does\u0301 aspirin",
    ]
    texts += [t.upper() for t in texts] + [t + "\u0301" for t in texts] + ["a" + t for t in texts]
    data, offsets = utf8_buffers(pa.array(texts, pa.string()))
    left, right = (
        np.array(x, dtype=np.int64) for x in zip(*itertools.product(range(len(texts)), repeat=2), strict=True)
    )
    maybe = np.zeros(len(left), dtype=np.bool_)
    may_match(data, offsets, left, right, maybe)
    normalized = [normalize_for_matching(t) for t in texts]
    for i, j, m in zip(left, right, maybe, strict=True):
        if normalized[i] == normalized[j]:
            assert m, (texts[i], texts[j])
    assert not maybe.all()


def test_nfc_and_upper_case_reach_langid_as_before():
    """The identifier's own encoder (upper case lowered, NFC) is used wherever it could change bytes."""
    texts = ["ÉCOLE MAJUSCULE ÉTUDE CLINIQUE", "THE PATIENT HAS A FEVER", "cafe\u0301 au lait", "plain text"]
    assert not unicodedata.is_normalized("NFC", texts[2])
    lo, hi = language_bounds(pa.array(texts, pa.string()), ("en",), _CANDIDATE_LANGUAGES)
    exact = np.array(reference_language_scores(texts, ("en",), _CANDIDATE_LANGUAGES))
    assert ((lo <= exact) & (exact <= hi)).all()
