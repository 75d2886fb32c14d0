"""Language identification for ``clean``: langid.py (py3langid, offline model), one text at a time or a
whole batch at once.

:func:`language_scores` is the definition: langid.py's ``rank`` of each text's first 4000 characters,
scored 1.0 when the most likely language is wanted and otherwise the probability mass of the wanted
languages. It walks a byte automaton in Python and multiplies one sparse vector per text (~0.5 ms a text).

:func:`language_bounds` gets the same answer for a batch in compiled code: the automaton walk and the
Naive Bayes dot product run in numba kernels (float64), and the softmax for the whole batch in numpy.
It reads the identifier's own tables and uses its own text encoder and alias pairs (``_encode``,
``_alias_pairs``: private to py3langid, so the tests compare the two paths on every run).
langid.py computes in float32 (and its dot product's summation order is BLAS's), so the batch does not
reproduce its floats bit for bit; instead every step's worst-case float32 rounding error is bounded, which
gives an interval certain to hold the exact score. Where the interval cannot settle a decision (a near tie
between a wanted and an unwanted language, or a score near the confidence threshold or near a rounding
boundary of the printed detail), the caller asks :func:`exact_score` for that text: rare, and exact.
"""

from __future__ import annotations

import hashlib
import logging
import lzma
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aloe_data.stages.arrow_text import map_where, matches, may_change_under, utf8_buffers
from aloe_data.stages.derived_cache import cached_arrays, cached_file

logger = logging.getLogger(__name__)

MAX_CHARS = 4000  # langid.py sees each text's first 4000 characters
_U32 = 2.0**-24  # float32 unit roundoff
_LOG1P_ERROR = 1e-6  # relative error of numpy's float32 log1p (a few ulp; generous)
_EXP_ERROR = 1e-6  # relative error of numpy's float32 exp (a few ulp; generous)
_F64_ERROR = 1e-12  # relative error of the float64 softmax (exp, sums and divisions of <100 terms)
_TINY = 1e-30  # absolute error of a float32 probability that underflowed


@lru_cache(maxsize=8)
def _language_identifier(candidates: tuple[str, ...]):
    """One langid.py identifier per worker process, restricted to ``candidates`` (loaded lazily)."""
    identifier = _load_identifier()
    identifier.set_languages(list(candidates))
    return identifier


def _model_file_tag() -> str:
    """What the shipped model's derived cache entries are named by: py3langid's version and the model
    file's size and mtime (a reinstall or another model file gives new entries)."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    stat = (MODEL_DIR / MODEL_FILE).stat()
    return f"{version('py3langid')}-{stat.st_size}-{stat.st_mtime_ns}"


def _load_identifier():
    """langid.py's identifier (``norm_probs``) over its own model, decompressed once per machine.

    The model ships as an xz-compressed ``.npz``; py3langid decompresses it on every load (0.69 s a
    process, paid by each Ray worker that cleans). The decompressed file goes to the derived cache
    (:mod:`aloe_data.stages.derived_cache`, named by py3langid's version and the model file's size and
    mtime) and is loaded from there (0.20 s) with ``allow_pickle=False``, into the same arrays
    py3langid's ``load_model`` builds (its ``_to_array`` for the automaton; the tests check the result
    against ``from_model_file``). If the cache cannot be written or read, the model is loaded as
    py3langid does."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import _to_array

    model = MODEL_DIR / MODEL_FILE
    name = f"py3langid-{_model_file_tag()}.npz"
    cached = cached_file(name, lambda: lzma.decompress(model.read_bytes()))
    if cached is not None:
        try:
            with np.load(cached, allow_pickle=False) as data:
                return LanguageIdentifier(
                    np.asarray(data["ptc"]),
                    np.asarray(data["pc"]),
                    data["classes"].tolist(),
                    _to_array(data["nextmove"]),
                    data["out_feat"].tolist(),
                    norm_probs=True,
                    tk_row=_to_array(data["nextmove_row"]),
                )
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("langid model cache %s unreadable (%s); loading the shipped model", cached, exc)
            cached.unlink(missing_ok=True)
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _labels(languages: tuple[str, ...], candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The identifier's label set: the wanted languages and the candidates, once each."""
    return tuple(dict.fromkeys(languages + candidates))


def _identifier_for(languages: tuple[str, ...], candidates: tuple[str, ...]):
    return _language_identifier(_labels(languages, candidates))


def exact_score(text: str, languages: tuple[str, ...], candidates: tuple[str, ...]) -> float:
    """langid.py's score of one text (see :func:`language_scores`)."""
    ranked = _identifier_for(languages, candidates).rank(text[:MAX_CHARS])
    if ranked[0][0] in languages:
        return 1.0
    return sum(p for lang, p in ranked if lang in languages)


def language_scores(texts: list[str], languages: tuple[str, ...], candidates: tuple[str, ...]) -> list[float]:
    """Probability (0-1) that each text is in one of ``languages``, from langid.py (offline model).

    A text whose most likely language is one of ``languages`` scores 1.0, so a mixed row that is mostly
    English is never dropped for a few foreign words; otherwise the score is the probability mass of the
    wanted languages among ``candidates``.
    """
    return [exact_score(text, languages, candidates) for text in texts]


@dataclass(frozen=True)
class _Model:
    """The identifier's arrays in the dtypes the kernel wants, and its labels' columns."""

    nextmove: np.ndarray  # uint32, (rows x 256) flattened
    rowbase: np.ndarray  # int32, state -> offset of its row in nextmove
    output: np.ndarray  # int32, state -> feature (-1: none)
    ptc: np.ndarray  # float32 (features x classes, the model's float16 values exactly), C-contiguous
    pc: np.ndarray  # float64 (classes)
    labels: tuple[str, ...]  # distinct labels, in the identifier's column order
    label_columns: np.ndarray  # the column holding each label's (folded) probability
    alias_pairs: tuple[tuple[int, int], ...]  # (first, duplicate) columns of one label


@lru_cache(maxsize=8)
def _model(candidates: tuple[str, ...]) -> _Model:
    """The kernel's view of the identifier for ``candidates`` (one per worker process).

    Read from the derived cache (named by py3langid's version, the model file's size and mtime and the
    candidates) when an earlier process saved it: a worker that cleans then never builds the identifier
    (0.07-0.17 s) nor restricts it to the candidates (0.08 s), unless a batch has a near tie for
    :func:`exact_score`. ``tests/data/test_derived_cache.py`` checks the entry equals the derivation."""
    key = hashlib.sha256(",".join(candidates).encode()).hexdigest()[:16]
    name = f"langid-kernel-v1-{_model_file_tag()}-{key}"
    arrays = cached_arrays(name, lambda: _derive_model_arrays(candidates))
    return _Model(
        nextmove=arrays["nextmove"],
        rowbase=arrays["rowbase"],
        output=arrays["output"],
        ptc=arrays["ptc"],
        pc=arrays["pc"],
        labels=tuple(arrays["labels"].tolist()),
        label_columns=arrays["label_columns"],
        alias_pairs=tuple((int(a), int(b)) for a, b in arrays["alias_pairs"].tolist()),
    )


def _derive_model_arrays(candidates: tuple[str, ...]) -> dict[str, np.ndarray]:
    """:class:`_Model`'s fields as arrays, from the identifier restricted to ``candidates``."""
    identifier = _language_identifier(candidates)
    if (identifier.nb_ptc > 0).any():  # _logit_error's bound takes every term of the dot to be <= 0
        raise ValueError(
            "langid model with positive log-probabilities: the batched error bound does not hold"
        )
    classes = list(identifier.nb_classes)
    first: dict[str, int] = {}
    for column, label in enumerate(classes):
        first.setdefault(label, column)
    return {
        "nextmove": np.asarray(identifier.tk_nextmove, dtype=np.uint32),
        "rowbase": np.asarray(identifier.tk_row, dtype=np.int32) << 8,
        "output": np.asarray(identifier.tk_output, dtype=np.int32),
        "ptc": np.ascontiguousarray(identifier.nb_ptc, dtype=np.float32),
        "pc": np.asarray(identifier.nb_pc, dtype=np.float64),
        "labels": np.array(list(first), dtype=np.str_),
        "label_columns": np.array(list(first.values()), dtype=np.int64),
        "alias_pairs": np.array(identifier._alias_pairs, dtype=np.int64).reshape(-1, 2),
    }


def _langid_bytes(texts: pa.Array) -> pa.Array:
    """The bytes langid.py scores for each text: its first 4000 characters, lower-cased if all upper,
    NFC, UTF-8. Text with a lower-case ASCII letter and nothing NFC could change needs none of that (its
    bytes are the string's own); the rest goes through the identifier's own encoder (a staticmethod:
    no model is loaded for it)."""
    from py3langid.langid import LanguageIdentifier

    encode = LanguageIdentifier._encode
    texts = pc.utf8_slice_codeunits(texts.fill_null(""), 0, MAX_CHARS)
    special = matches(texts, may_change_under("NFC")) | ~matches(texts, "[a-z]")
    return map_where(texts, special, encode, into=texts.cast(pa.binary()))


def _features(data: np.ndarray, offsets: np.ndarray, model: _Model) -> tuple[np.ndarray, np.ndarray]:
    """Each text's Naive Bayes dot product (float64, texts x classes) and number of distinct features."""
    from aloe_data.stages.clean_kernels import langid_features, nb_dot  # numba only where batches run

    lengths = np.diff(offsets)
    features = np.empty(len(data), dtype=np.int32)
    order = np.argsort(lengths, kind="stable")
    langid_features(data, offsets, order, model.nextmove, model.rowbase, model.output, features)
    dot = np.zeros((len(lengths), model.ptc.shape[1]), dtype=np.float64)
    distinct = np.zeros(len(lengths), dtype=np.int64)
    counts = np.zeros(model.ptc.shape[0] + 1, dtype=np.int32)  # + 1: nb_dot's slot for no feature
    touched = np.empty(max(int(lengths.max(initial=0)), 1), dtype=np.int64)
    nb_dot(features, offsets, model.ptc, counts, touched, dot, distinct)
    return dot, distinct


def _logit_error(dot: np.ndarray, distinct: np.ndarray, prior: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per text, a bound on how far langid.py's float32 logits ``(dot + prior) * scale`` can be from
    these float64 ones: its dot product of k terms is within gamma_k * |dot| of the exact one whatever
    the summation order (every term has one sign: log1p(count) > 0 and every log-probability <= 0), to
    which come log1p's error, one rounding for adding the prior and two for the scaling; this estimate's
    own float64 error is gamma_k in double precision. Doubled, for safety."""
    k = distinct.astype(np.float64)[:, None]
    gamma32 = k * _U32 / (1 - k * _U32)
    gamma64 = 1.01 * k * 2.0**-53 + 1e-15
    magnitude = np.abs(dot) + np.abs(prior)
    error = np.abs(dot) * (_LOG1P_ERROR + 1.01 * gamma32) + magnitude * (5 * _U32 + gamma64)
    return 2 * (error * scale[:, None]).max(axis=1)


def _label_probabilities(dot: np.ndarray, distinct: np.ndarray, nbytes: np.ndarray, model: _Model):
    """Each text's estimated probability per label (aliases folded, as langid.py does) and the log of
    the factor by which langid.py's float32 probabilities can differ from it, either way."""
    featureless = distinct == 0  # langid.py scores these all 0.0 (no prior): a uniform distribution
    prior = np.where(featureless[:, None], 0.0, model.pc[None, :])
    scale = 1.0 / np.sqrt(np.maximum(nbytes, 1).astype(np.float64))
    logits = (dot + prior) * scale[:, None]
    delta = _logit_error(dot, distinct, prior, scale)
    spread = logits.max(axis=1) - logits.min(axis=1) + 2 * delta
    n_classes = logits.shape[1]
    gamma_sum = n_classes * _U32 / (1 - n_classes * _U32)
    log_factor = 2 * delta + 2 * _U32 * spread + 2 * _EXP_ERROR + gamma_sum + 4 * _U32 + _F64_ERROR
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    for first, duplicate in model.alias_pairs:
        probs[:, first] += probs[:, duplicate]
    return probs[:, model.label_columns], log_factor


def _score_interval(
    probs: np.ndarray, log_factor: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on each text's score from its estimated label probabilities (texts x labels), the log of
    their error factor and which labels are wanted: 1.0 where a wanted label is certainly ranked first;
    the wanted probability mass, widened by the error, where an unwanted one certainly is; else (0, 1)."""
    factor = np.exp(log_factor)[:, None]
    high, low = probs * factor + _TINY, probs / factor - _TINY
    none = np.full(len(probs), -np.inf)
    top_wanted = low[:, wanted].max(axis=1) > (high[:, ~wanted].max(axis=1) if (~wanted).any() else none)
    top_other = (low[:, ~wanted].max(axis=1) if (~wanted).any() else none) > high[:, wanted].max(axis=1)
    mass, n_wanted = probs[:, wanted].sum(axis=1), int(wanted.sum())
    # Python sums langid.py's probabilities of the wanted labels in double precision: 1e-13 covers 97.
    mass_low = np.maximum(mass / factor[:, 0] * (1 - 1e-13) - n_wanted * _TINY, 0.0)
    mass_high = mass * factor[:, 0] * (1 + 1e-13) + n_wanted * _TINY
    lo = np.where(top_wanted, 1.0, np.where(top_other, mass_low, 0.0))
    hi = np.where(top_wanted, 1.0, np.where(top_other, mass_high, 1.0))
    return lo, hi


def language_bounds(
    texts: pa.Array, languages: tuple[str, ...], candidates: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """For each text (a string array; nulls read as empty), ``lo <= score <= hi`` for its exact
    :func:`language_scores` score. ``lo == hi == 1.0`` where a wanted language is certainly the most
    likely; ``(0, 1)`` where it is too close to tell which language comes first."""
    model = _model(_labels(languages, candidates))
    data, offsets = utf8_buffers(_langid_bytes(texts))
    dot, distinct = _features(data, offsets, model)
    probs, log_factor = _label_probabilities(dot, distinct, np.diff(offsets), model)
    return _score_interval(probs, log_factor, np.array([label in languages for label in model.labels]))
