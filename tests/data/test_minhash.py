"""MinHash signatures, shingling, SHA-1 and LSH helpers against their references (datasketch, hashlib,
aloe_core.text)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from aloe_core.config import validate_config
from aloe_core.errors import ConfigError
from aloe_core.text import normalize_for_matching, word_ngrams
from aloe_data.dedup import EMPTY, MinHashConfig, band_keys, optimal_param, shingle_set, signatures
from aloe_data.dedup.lsh import bucket_star_edges
from aloe_data.dedup.sha1 import sha1_prefix32
from aloe_data.dedup.shingles import shingle_batch

# Code points that stress normalisation: combining marks, ligatures, full-width and mathematical letters,
# Roman numerals and superscripts (NFKC), sharp s / final sigma / Kelvin sign (case-folding), exotic
# whitespace, punctuation, CJK, astral emoji, underscore (a word character).
_UNICODE_POOL = (
    "abcXYZ019_ -,.;!?'\"()[]/\\\t\n\r\x0b\x0c\x1c\u00a0\u2003\u3000\u200b"
    "éÉñçøßẞſςΣσ\u212a\u0301\u0308ﬁﬀＡｂ１𝐀𝐛Ⅻⅷ²½"
    "日本語テキスト。、한국어العربيةहिन्दी😀🧬—–…«»·"
)


def _random_word_texts(rng: random.Random, count: int) -> list[str]:
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
        for _ in range(400)
    ]
    vocab += ["Fever", "HbA1c", "mg/dL", "COVID-19", "naïve", "ÉCOLE", "x-ray", "β-blocker"]
    texts = []
    for _ in range(count):
        words = [
            rng.choice(vocab) + rng.choice(["", "", ",", ".", "!", " -"]) for _ in range(rng.randint(0, 60))
        ]
        texts.append(rng.choice(["", " ", "\n"]).join(words) if words else rng.choice(["", "  ", "?!"]))
    return texts


def _random_unicode_texts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(_UNICODE_POOL) for _ in range(rng.randint(0, 80))) for _ in range(count)]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = random.Random(20240607)
    return _random_word_texts(rng, 1500) + _random_unicode_texts(rng, 1500)


def _datasketch(text: str, kind: str, n: int, num_perm: int, seed: int, scheme: str) -> np.ndarray:
    minhash = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
    minhash.update_batch([s.encode("utf-8", "surrogatepass") for s in shingle_set(text, kind, n)])
    return minhash.hashvalues


@pytest.mark.parametrize(
    ("kind", "ngram", "seed", "num_perm", "scheme"),
    [
        ("word", 5, 1, 128, "affine32"),
        ("char", 5, 1, 128, "affine32"),
        ("word", 3, 42, 64, "affine32"),
        ("char", 9, 42, 64, "affine32"),
        ("word", 5, 1, 128, "legacy"),
        ("char", 4, 7, 64, "legacy"),
    ],
)
def test_signatures_equal_datasketch(texts, kind, ngram, seed, num_perm, scheme) -> None:
    expected = np.stack([_datasketch(t, kind, ngram, num_perm, seed, scheme) for t in texts])
    params = {"num_perm": num_perm, "seed": seed, "scheme": scheme, "shingle": kind, "ngram": ngram}
    ours = signatures(texts, **params)  # one mixed batch: the Unicode normalisation path
    assert ours.shape == (len(texts), num_perm)
    mismatched = np.flatnonzero((ours != expected).any(axis=1))
    assert mismatched.size == 0, f"{mismatched.size} texts differ, first: {texts[mismatched[0]]!r}"
    ascii_rows = [i for i, t in enumerate(texts) if t.isascii()]
    assert len(ascii_rows) > 1000
    ascii_only = signatures([texts[i] for i in ascii_rows], **params)  # the ASCII fast path
    assert (ascii_only == expected[ascii_rows]).all()
    assert (ours == EMPTY).all(axis=1).any()  # empty texts are part of the corpus


def test_long_text_spanning_permutation_chunks() -> None:
    """A text of 20,000 shingles (many SHA-1 kernel chunks of 512) between a short and an empty text."""
    rng = random.Random(3)
    text = " ".join(f"w{rng.randrange(5000)}" for _ in range(20_000))
    for scheme in ("affine32", "legacy"):
        ours = signatures(["short text here", text, ""], scheme=scheme)
        assert (ours[1] == _datasketch(text, "word", 5, 128, 1, scheme)).all()
        assert (ours[0] == _datasketch("short text here", "word", 5, 128, 1, scheme)).all()


def test_batch_shingles_are_the_reference_shingles(texts) -> None:
    """Texts concatenated in one batch never leak words into each other (word at the end of one text,
    word at the start of the next), for every n including 1."""
    batch_texts = [*texts[:200], "abc", "def", "ghi jkl", "", "mno", "Ⅻ", "x"]
    for kind, n in [("word", 1), ("word", 2), ("word", 5), ("char", 1), ("char", 3), ("char", 7)]:
        batch = shingle_batch(batch_texts, kind, n)
        raw = batch.buffer.tobytes()
        for i, text in enumerate(batch_texts):
            lo, hi = batch.offsets[i], batch.offsets[i + 1]
            got = {raw[s : s + k] for s, k in zip(batch.starts[lo:hi], batch.lengths[lo:hi], strict=True)}
            assert got == {s.encode() for s in shingle_set(text, kind, n)}, (kind, n, text)


def test_empty_and_short_texts() -> None:
    sig = signatures(["", "   ", "?!.", "Fever, cough", "fever cough", "One two three four five"])
    assert (sig[:3] == EMPTY).all()  # no shingles: datasketch's initial state, every slot 2**32 - 1
    assert (sig[3] == sig[4]).all()  # one shingle: the whole normalised text
    assert (sig[3] == _datasketch("fever cough", "word", 5, 128, 1, "affine32")).all()
    assert word_ngrams("One two three four five", 5) == {"one two three four five"}
    assert (sig[5] == _datasketch("one two three four five", "word", 5, 128, 1, "affine32")).all()
    assert not (sig[5] == EMPTY).any()


def test_lone_surrogates_are_dropped_like_punctuation() -> None:
    """A str with lone surrogates (impossible from Arrow, possible from Python) must not crash: they are
    neither word characters nor whitespace, so normalisation removes them like punctuation."""
    texts = ["alpha\ud800beta gamma \udfff delta", "alpha,beta gamma ; delta", "\ud83d", "x\udc00"]
    for kind in ("word", "char"):
        sig = signatures(texts, shingle=kind, ngram=3)
        assert (sig == signatures(texts, shingle=kind, ngram=3)).all()  # deterministic
        assert (sig[0] == sig[1]).all()
        assert (sig[2] == EMPTY).all()
        for i, text in enumerate(texts):
            assert (sig[i] == _datasketch(text, kind, 3, 128, 1, "affine32")).all()
    assert normalize_for_matching(texts[0]) == "alpha beta gamma delta"


def test_sha1_prefix32_equals_hashlib() -> None:
    """Every message length 0..300 (one to five SHA-1 blocks, so kernel chunks mixing block counts), many
    random slices of one buffer, and slices ending exactly at the buffer's end."""
    rng = np.random.default_rng(7)
    buf = rng.integers(0, 256, 20_000, dtype=np.uint8)
    lengths = np.concatenate([np.arange(301), rng.integers(0, 120, 5000), np.full(100, 130)])
    starts = rng.integers(0, len(buf) - 301, len(lengths))
    raw = buf.tobytes()
    expected = [
        int.from_bytes(hashlib.sha1(raw[s : s + n]).digest()[:4], "little")
        for s, n in zip(starts, lengths, strict=True)
    ]
    assert sha1_prefix32(buf, starts, lengths).tolist() == expected
    assert sha1_prefix32(buf, starts[:0], lengths[:0]).shape == (0,)
    tail = np.arange(0, 130)  # messages that end on the last byte (the kernel reads padding after it)
    expected_tail = [int.from_bytes(hashlib.sha1(raw[len(raw) - n :]).digest()[:4], "little") for n in tail]
    assert sha1_prefix32(buf, len(buf) - tail, tail).tolist() == expected_tail
    with pytest.raises(ValueError, match="outside the buffer"):
        sha1_prefix32(buf, np.array([len(buf) - 3]), np.array([4]))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95])
@pytest.mark.parametrize("num_perm", [16, 64, 128, 250])
def test_optimal_param_equals_datasketch(threshold, num_perm) -> None:
    assert optimal_param(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    assert optimal_param(threshold, num_perm, 0.3, 0.7) == _optimal_param(threshold, num_perm, 0.3, 0.7)


def test_config_bands_rows_and_defaults() -> None:
    assert MinHashConfig().lsh_params() == (9, 13)  # datasketch MinHashLSH(threshold=0.8, num_perm=128)
    assert MinHashConfig(bands=16, rows=8).lsh_params() == (16, 8)
    with pytest.raises(ConfigError, match="both bands and rows"):
        validate_config(MinHashConfig, {"bands": 4}, "dedup.yaml")
    with pytest.raises(ConfigError, match="exceeds num_perm"):
        validate_config(MinHashConfig, {"bands": 20, "rows": 8}, "dedup.yaml")
    with pytest.raises(ConfigError, match=r"dedup\.yaml: shingle"):
        validate_config(MinHashConfig, {"shingle": "token"}, "dedup.yaml")


def test_band_keys_collide_exactly_on_equal_bands() -> None:
    rng = np.random.default_rng(3)
    sig = rng.integers(0, 2**32, (6, 12), dtype=np.uint32)
    sig[1, 4:8] = sig[0, 4:8]  # rows 0 and 1 share band 1 only
    sig[2, 0:4] = sig[3, 4:8]  # same values, different band: must not collide
    keys = band_keys(sig, bands=3, rows=4)
    assert keys.shape == (6, 3) and keys.dtype == np.uint64
    assert keys[0, 1] == keys[1, 1] and keys[0, 0] != keys[1, 0] and keys[0, 2] != keys[1, 2]
    assert keys[2, 0] != keys[3, 1]
    assert len(np.unique(keys)) == keys.size - 1
    with pytest.raises(ValueError, match="exceeds"):
        band_keys(sig, bands=4, rows=4)


def test_band_keys_are_identical_in_another_process() -> None:
    """Keys must not depend on the process (no Python hash(), no per-process random state)."""
    code = (
        "import sys, hashlib; from aloe_data.dedup import signatures, band_keys; "
        "texts = sys.stdin.read().split('\\x1e'); "
        "print(hashlib.sha256(band_keys(signatures(texts), 9, 13).tobytes()).hexdigest())"
    )
    texts = ["the patient presented with fever and cough for three days", "ÉCOLE naïve — 日本語", "x"]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", code],
        input="\x1e".join(texts),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    here = hashlib.sha256(band_keys(signatures(texts), 9, 13).tobytes()).hexdigest()
    assert child.stdout.strip() == here


def test_importing_aloe_does_not_load_numba_until_signatures_run() -> None:
    """vLLM 0.32 cannot start an engine in a process where llvmlite (numba) is loaded, and CoT actors
    import aloe_data: the MinHash kernels must load only when signatures are computed."""
    code = (
        "import sys; from aloe_core.cli import build_app; build_app(); "
        "import aloe_data.dedup, aloe_data.stages, aloe_infer.vllm_engine; "
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'llvmlite'}); "
        "print(loaded()); aloe_data.dedup.signatures(['one two three four five six']); print(loaded())"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.split("\n")[:2] == ["[]", "['llvmlite', 'numba']"]


def test_bucket_star_edges() -> None:
    table = pa.table(
        {
            "band_key": pa.array([5, 9, 5, 5, 7, 9, 3, 3], pa.uint64()),
            "id": ["c", "x", "a", "b", "lonely", "y", "dup", "dup"],
        }
    )
    edges = bucket_star_edges(table)
    got = sorted(
        zip(edges["band_key"].to_pylist(), edges["src"].to_pylist(), edges["dst"].to_pylist(), strict=True)
    )
    # bucket 5 {a, b, c}: star from the smallest id; bucket 9 {x, y}; 7 is alone; 3 repeats one id.
    assert got == [(5, "a", "b"), (5, "a", "c"), (9, "x", "y")]
    assert bucket_star_edges(table.slice(0, 1)).num_rows == 0
