"""The derived cache: what a worker reads back is exactly what it would derive, and a broken or
unwritable cache only costs the time of deriving again."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from aloe_data.stages import arrow_text, derived_cache, language

TEXTS = [
    "The patient presented with chest pain radiating to the left arm.",
    "El paciente presentó dolor torácico que irradiaba al brazo izquierdo.",
    "Le patient présentait une douleur thoracique.",
    "",
    "ÉNFASIS EN MAYÚSCULAS",
]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path))
    return tmp_path / "derived"


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_identifier_from_the_cache_is_py3langids_own(cache_dir):
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    first = language._load_identifier()  # decompresses into the cache
    (entry,) = _entries(cache_dir)
    assert entry.startswith("py3langid-") and entry.endswith(".npz")
    second = language._load_identifier()  # reads it back
    for loaded in (first, second):
        assert np.array_equal(loaded.nb_ptc, reference.nb_ptc)
        assert loaded.nb_ptc.dtype == reference.nb_ptc.dtype
        assert np.array_equal(loaded.nb_pc, reference.nb_pc)
        assert loaded.nb_classes == reference.nb_classes
        assert loaded.tk_nextmove == reference.tk_nextmove
        assert loaded.tk_row == reference.tk_row
        assert loaded.tk_output == reference.tk_output
        assert loaded._alias_pairs == reference._alias_pairs
        assert [loaded.rank(t) for t in TEXTS] == [reference.rank(t) for t in TEXTS]


def test_unreadable_model_entry_is_replaced(cache_dir):
    language._load_identifier()
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(b"not an npz")
    loaded = language._load_identifier()  # falls back to the shipped model and drops the bad entry
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    assert [loaded.rank(t) for t in TEXTS] == [reference.rank(t) for t in TEXTS]
    assert _entries(cache_dir) == []
    language._load_identifier()
    assert len(_entries(cache_dir)) == 1


@pytest.mark.parametrize("form", ["NFC", "NFKC"])
def test_may_change_under_reads_back_what_it_derives(cache_dir, form):
    derived = arrow_text._derive_may_change_under(form)
    arrow_text.may_change_under.cache_clear()
    try:
        assert arrow_text.may_change_under(form) == derived  # derives and writes
        arrow_text.may_change_under.cache_clear()
        assert arrow_text.may_change_under(form) == derived  # reads the entry
        (entry,) = cache_dir.glob(f"may_change_under-{form}-*.json")
        entry.write_text("{truncated", encoding="utf-8")
        arrow_text.may_change_under.cache_clear()
        assert arrow_text.may_change_under(form) == derived  # derives again, rewrites
        assert "truncated" not in entry.read_text(encoding="utf-8")
    finally:
        arrow_text.may_change_under.cache_clear()


@pytest.mark.parametrize(("pattern", "negate"), [(r"\s", False), (r"\s", True), (r"[\s.\-]", False)])
def test_python_class_reads_back_what_it_derives(cache_dir, pattern, negate):
    derived = arrow_text._derive_python_class(pattern, negate)
    arrow_text.python_class.cache_clear()
    try:
        assert arrow_text.python_class(pattern, negate) == derived  # derives and writes
        (entry,) = cache_dir.glob("python_class-*.json")
        arrow_text.python_class.cache_clear()
        assert arrow_text.python_class(pattern, negate) == derived  # reads the entry
        entry.write_text('"[x]"', encoding="utf-8")  # the entry, not the derivation, is what is used
        arrow_text.python_class.cache_clear()
        assert arrow_text.python_class(pattern, negate) == "[x]"
    finally:
        arrow_text.python_class.cache_clear()


def test_python_class_entries_differ_by_pattern_and_negation(cache_dir):
    arrow_text.python_class.cache_clear()
    try:
        classes = {arrow_text.python_class(p, n) for p in (r"\s", r"\d") for n in (False, True)}
        assert len(classes) == 4
        assert len(list(cache_dir.glob("python_class-*.json"))) == 4
    finally:
        arrow_text.python_class.cache_clear()


def test_unwritable_cache_still_gives_the_value(tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    monkeypatch.setenv("ALOE_CACHE_DIR", str(blocker))  # derived/ cannot be made under a file
    assert derived_cache.cached_text("t-v1", lambda: "value") == "value"
    assert derived_cache.cached_file("f-v1", lambda: b"x") is None


def test_failed_producer_leaves_nothing_and_stale_temporaries_go(cache_dir):
    def fail():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        derived_cache.cached_file("entry.bin", fail)
    assert _entries(cache_dir) == []
    cache_dir.mkdir(parents=True, exist_ok=True)
    stale, fresh = cache_dir / ".entry.bin.old.tmp", cache_dir / ".entry.bin.new.tmp"
    stale.write_bytes(b"left by a killed worker")
    fresh.write_bytes(b"another worker's, still being written")
    old = time.time() - derived_cache.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    path = derived_cache.cached_file("entry.bin", lambda: b"done")
    assert path is not None and path.read_bytes() == b"done"
    assert _entries(cache_dir) == [".entry.bin.new.tmp", "entry.bin"]


def _model_fields(model):
    return {name: getattr(model, name) for name in model.__dataclass_fields__}


def _assert_models_equal(loaded, derived):
    for name, value in _model_fields(derived).items():
        got = getattr(loaded, name)
        if isinstance(value, np.ndarray):
            assert type(got) is np.ndarray and got.dtype == value.dtype and np.array_equal(got, value), name
            assert got.flags.writeable, name  # numba's cached kernels take writable arrays
        else:
            assert got == value, name


def test_kernel_model_from_the_cache_equals_its_derivation(cache_dir):
    candidates = ("en", "es", "fr", "de")
    derived = language._Model(**_as_fields(language._derive_model_arrays(candidates)))
    language._model.cache_clear()
    try:
        first = language._model(candidates)  # derives and writes
        (entry,) = [p for p in cache_dir.iterdir() if p.name.startswith("langid-kernel-")]
        assert sorted(p.name for p in entry.iterdir()) == sorted(
            [f"{k}.npy" for k in _model_fields(derived)] + ["index.json"]
        )
        language._model.cache_clear()
        second = language._model(candidates)  # reads the entry back, mapped
        for loaded in (first, second):
            _assert_models_equal(loaded, derived)
        language._model.cache_clear()
        assert language._model(("en", "es")) is not None  # other candidates: another entry
        assert len([p for p in cache_dir.iterdir() if p.name.startswith("langid-kernel-")]) == 2
    finally:
        language._model.cache_clear()


def _as_fields(arrays):
    return {
        **arrays,
        "labels": tuple(arrays["labels"].tolist()),
        "alias_pairs": tuple((int(a), int(b)) for a, b in arrays["alias_pairs"].tolist()),
    }


def test_damaged_array_entry_is_derived_again(cache_dir):
    calls = []

    def derive():
        calls.append(1)
        return {"a": np.arange(5, dtype=np.int32), "s": np.array(["x", "yz"])}

    first = derived_cache.cached_arrays("arrays-v1", derive)
    again = derived_cache.cached_arrays("arrays-v1", derive)
    assert len(calls) == 1 and np.array_equal(again["a"], first["a"]) and again["s"].tolist() == ["x", "yz"]
    (cache_dir / "arrays-v1" / "a.npy").write_bytes(b"not an array")
    repaired = derived_cache.cached_arrays("arrays-v1", derive)
    assert len(calls) == 2 and np.array_equal(repaired["a"], first["a"])
    reread = derived_cache.cached_arrays("arrays-v1", derive)
    assert np.array_equal(reread["a"], first["a"]) and len(calls) == 2
    (cache_dir / "arrays-v1" / "index.json").unlink()  # a writer killed before its index: not an entry
    derived_cache.cached_arrays("arrays-v1", derive)
    assert len(calls) == 3
