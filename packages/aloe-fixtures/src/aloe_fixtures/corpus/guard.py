"""Generation-time guard: keeps clean rows pairwise distinct and away from the benchmark.

Why a guard and not only careful templates: rows come from a few hundred facts, so however varied the
templates, some random draws land close to an earlier row. The guard makes the corpus properties hold by
construction instead of by luck:

* **distinct**: a candidate whose word 5-gram Jaccard (on the dedup matching text, as defined by
  :mod:`aloe_core.text`) with an accepted row reaches ``threshold`` (0.45, a margin under the 0.5 the
  tests assert) is rejected, exact duplicates included. Candidate pairs come from MinHash LSH (32 bands
  of two rows; a pair is examined when it shares two bands, which a pair at Jaccard 0.5 fails to do with
  probability about 1e-3), then are verified exactly on the stored 5-gram hashes. The brute-force tests
  check the outcome on every pair of a sample;
* **benchmark-separated**: a candidate whose full text shares any word 13-gram with a registered
  benchmark item is rejected (hash collisions can only cause extra rejections, never misses). Only
  candidates that can contain runs of answer options are checked (see ``items.tokens``).

Candidates are checked in batches (:meth:`DistinctGuard.admit_batch`): hashing, signatures, candidate pairs
and exact Jaccards are vectorised over the batch; the outcome equals checking candidates one by one, each
against every row accepted before it (earlier candidates of the same batch included). Callers pass word
lists (``aloe_core.text.words`` of the texts). Hashing is deterministic (word ids in first-seen order,
fixed random tables, polynomial n-gram hashes), so the same candidates give the same decisions anywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_GRAM = 5
SMALL_HIT_LIST = 64  # hit lists up to this size are examined in full (see ``_against_index``)


def _powers(base: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    value = 1
    for i in range(n):
        out[i] = value
        value = (value * base) & 0xFFFFFFFFFFFFFFFF
    return out


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: much faster than np.unique's hash path on small arrays)."""
    if len(values) < 2:
        return values.copy()
    s = np.sort(values)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


@dataclass
class _Batch:
    keyed: np.ndarray  # sorted (candidate index << 32 | 5-gram hash) over the batch
    grams: list[np.ndarray]  # per candidate: sorted distinct 32-bit 5-gram hashes
    sigs: np.ndarray  # (candidates, num_perm) uint32 MinHash signatures
    keys: np.ndarray  # (candidates, bands) uint64 LSH band keys


class DistinctGuard:
    """See module docstring. Not thread-safe; one guard per generated corpus."""

    def __init__(
        self,
        threshold: float = 0.45,
        num_perm: int = 64,
        band_rows: int = 2,
        bucket_cap: int = 64,
        bench_n: int = 13,
        seed: int = 20240611,
    ) -> None:
        if num_perm % band_rows:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of band_rows ({band_rows})")
        self.threshold = threshold
        self.bench_n = bench_n
        self._band_rows = band_rows
        self._bucket_cap = bucket_cap
        self._rng = np.random.default_rng(seed)
        self._word_table = self._rng.integers(1, 2**63, size=1 << 16, dtype=np.uint64)
        self._pow = _powers(_BASE, 1 << 16)
        self._pow_inv = _powers(_BASE_INV, 1 << 16)
        self._perm_a = self._rng.integers(1, 2**32, size=num_perm, dtype=np.uint32) | np.uint32(1)
        self._perm_b = self._rng.integers(0, 2**32, size=num_perm, dtype=np.uint32)
        self._vocab: dict[str, int] = {}
        self._buckets: list[dict[int, int | list[int]]] = [{} for _ in range(num_perm // band_rows)]
        self._sigs = np.zeros((1024, num_perm), dtype=np.uint32)
        self._grams: list[np.ndarray] = []
        self._bench = np.zeros(0, dtype=np.uint64)
        self.rejected = {"similar": 0, "benchmark": 0}

    # -- hashing ----------------------------------------------------------------------------------------

    def _word_hashes(self, tokens: Sequence[str]) -> np.ndarray:
        vocab = self._vocab
        ids = list(map(vocab.get, tokens))
        if None in ids:  # new words: assign ids in first-seen order (deterministic)
            for i, token in enumerate(tokens):
                if ids[i] is None:
                    ids[i] = vocab.setdefault(token, len(vocab))
            while len(vocab) > len(self._word_table):
                extra = self._rng.integers(1, 2**63, size=len(self._word_table), dtype=np.uint64)
                self._word_table = np.concatenate([self._word_table, extra])
        return self._word_table[np.fromiter(ids, dtype=np.int64, count=len(ids))]

    def _segment_ngrams(self, docs: list[Sequence[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
        """n-gram hashes of several word lists at once: (hashes, owner index of each hash).

        Polynomial hashes over the concatenation: with prefix sums G_k = sum_{t<k} v_t * B^-t, the n-gram
        starting at i hashes to (G_{i+n} - G_i) * B^(i+n-1) = sum_j v_{i+j} B^(n-1-j) (uint64 arithmetic
        wraps modulo 2**64). A list with fewer than n words (but at least one) yields one hash of all its
        words, as :func:`aloe_core.text.word_ngrams` yields one shingle.
        """
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        total = int(lengths.sum())
        values = self._word_hashes([w for d in docs for w in d])
        while total + n > len(self._pow):
            self._pow = _powers(_BASE, 2 * len(self._pow))
            self._pow_inv = _powers(_BASE_INV, len(self._pow))
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(values * self._pow_inv[:total], out=prefix[1:])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        widths = np.minimum(lengths, n)
        counts = np.where(lengths > 0, lengths - widths + 1, 0)
        owner = np.repeat(np.arange(len(docs)), counts)
        offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        begin = np.repeat(starts, counts) + offset
        width = np.repeat(widths, counts)
        hashes = (prefix[begin + width] - prefix[begin]) * self._pow[begin + width - 1]
        return hashes, owner

    def grams(self, tokens: Sequence[str]) -> np.ndarray:
        """Sorted distinct 5-gram hashes of one word list (32-bit, as stored)."""
        hashed, _ = self._segment_ngrams([tokens], _GRAM)
        return sorted_unique((hashed >> np.uint64(32)).astype(np.uint32))

    # -- benchmark --------------------------------------------------------------------------------------

    def add_benchmark(self, tokens: Sequence[str]) -> None:
        """Register a benchmark item's words: later candidates sharing a 13-gram with it are rejected."""
        hashed, _ = self._segment_ngrams([tokens], self.bench_n)
        self._bench = sorted_unique(np.concatenate([self._bench, hashed]))

    def _touch_benchmark(self, docs: list[Sequence[str]]) -> np.ndarray:
        """Per word list: does it share a 13-gram hash with the benchmark?"""
        out = np.zeros(len(docs), dtype=bool)
        if not len(self._bench):
            return out
        hashed, owner = self._segment_ngrams(docs, self.bench_n)
        idx = np.searchsorted(self._bench, hashed)
        idx[idx == len(self._bench)] = 0
        out[np.unique(owner[self._bench[idx] == hashed])] = True
        return out

    def _prepare(self, docs: list[Sequence[str]]) -> _Batch:
        """Hash a batch: per word list, sorted distinct 32-bit 5-gram hashes, MinHash signature, band keys."""
        hashed, owner = self._segment_ngrams(docs, _GRAM)
        keyed = sorted_unique((owner.astype(np.uint64) << np.uint64(32)) | (hashed >> np.uint64(32)))
        doc = (keyed >> np.uint64(32)).astype(np.int64)
        grams32 = (keyed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        bounds = np.searchsorted(doc, np.arange(len(docs) + 1))
        per_doc = [grams32[bounds[i] : bounds[i + 1]] for i in range(len(docs))]
        # 32-bit universal hashing (odd multiplier: a bijection of the 32-bit gram hashes) per permutation.
        values = grams32[:, None] * self._perm_a[None, :] + self._perm_b[None, :]
        sigs = np.zeros((len(docs), len(self._perm_a)), dtype=np.uint32)
        nonempty = bounds[:-1] < bounds[1:]
        if nonempty.any():
            sigs[nonempty] = np.minimum.reduceat(values, bounds[:-1][nonempty], axis=0)
        rows = sigs.reshape(len(docs), -1, self._band_rows).astype(np.uint64)
        keys = rows[:, :, 0].copy()
        for j in range(1, self._band_rows):
            keys = (keys << np.uint64(32)) ^ rows[:, :, j]
        return _Batch(keyed, per_doc, sigs, keys)

    def _similar_pairs(
        self,
        batch: _Batch,
        cands: np.ndarray,
        others: np.ndarray,
        other_grams: Sequence[np.ndarray],
        other_sigs: np.ndarray,
    ) -> np.ndarray:
        """Mask over (candidate, other) pairs: signature agreement passes, then exact Jaccard >= threshold.

        ``other_grams`` is indexable by the values in ``others``. Exact intersections for all close pairs at
        once: each other row's grams, tagged with the candidate's index, are looked up in the batch's sorted
        (candidate << 32 | gram) array.
        """
        agree = np.count_nonzero(other_sigs == batch.sigs[cands], axis=1)
        close = np.flatnonzero(agree >= self.threshold * 0.6 * batch.sigs.shape[1])
        result = np.zeros(len(cands), dtype=bool)
        if not len(close):
            return result
        grams = [other_grams[k] for k in others[close].tolist()]
        sizes = np.fromiter((len(g) for g in grams), dtype=np.int64, count=len(grams))
        owner = np.repeat(cands[close].astype(np.uint64), sizes)
        queries = (owner << np.uint64(32)) | np.concatenate(grams).astype(np.uint64)
        idx = np.searchsorted(batch.keyed, queries)
        idx[idx == len(batch.keyed)] = 0
        hits = (batch.keyed[idx] == queries).astype(np.int64)
        inter = np.add.reduceat(hits, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
        mine = np.fromiter(
            (len(batch.grams[c]) for c in cands[close].tolist()), dtype=np.int64, count=len(close)
        )
        result[close] = inter >= self.threshold * (mine + sizes - inter)
        return result

    def _against_index(self, batch: _Batch) -> np.ndarray:
        """Per candidate: is it too similar to a row accepted before this batch?

        When a candidate hits more than ``SMALL_HIT_LIST`` rows, rows sharing a single band with it are
        skipped: with 32 bands of two rows, a pair at Jaccard 0.5 shares at most one band with probability
        about 1e-3, while most chance collisions share exactly one band. Full
        buckets (``bucket_cap`` rows) are skipped too: they hold keys made of template 5-grams shared by
        thousands of rows, and a truly similar pair shares about eight bands, nearly always some rare ones.
        Measured on 40,000 candidates, these two shortcuts changed 3 decisions, all at Jaccard < 0.47.
        """
        pairs_c: list[int] = []
        pairs_r: list[int] = []
        buckets, cap = self._buckets, self._bucket_cap
        for i, keys in enumerate(batch.keys.tolist()):
            counts: Counter[int] = Counter()
            for band, key in zip(buckets, keys, strict=True):
                members = band.get(key)
                if members is None:
                    continue
                if members.__class__ is int:
                    counts[members] += 1
                elif len(members) < cap:
                    counts.update(members)
            # Few hits: examine them all; many (template-heavy rows): only rows sharing two or more bands.
            shared = (
                list(counts) if len(counts) <= SMALL_HIT_LIST else [r for r, c in counts.items() if c > 1]
            )
            pairs_c += [i] * len(shared)
            pairs_r += shared
        flagged = np.zeros(len(batch.grams), dtype=bool)
        if pairs_c:
            cands = np.asarray(pairs_c, dtype=np.int64)
            rows = np.asarray(pairs_r, dtype=np.int64)
            similar = self._similar_pairs(batch, cands, rows, self._grams, self._sigs[rows])
            flagged[cands[similar]] = True
        return flagged

    def _within_batch(self, batch: _Batch) -> set[tuple[int, int]]:
        """Pairs (i, j), i < j, of candidates in this batch that are too similar to each other."""
        pairs: set[tuple[int, int]] = set()
        for band in batch.keys.T:
            values, counts = np.unique(band, return_counts=True)
            for value in values[counts > 1].tolist():  # candidates sharing this band key: every pair
                members = np.flatnonzero(band == value).tolist()
                pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
        if not pairs:
            return set()
        first = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        second = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        similar = self._similar_pairs(batch, first, second, batch.grams, batch.sigs[second])
        return {(int(a), int(b)) for a, b, s in zip(first, second, similar, strict=True) if s}

    def admit_batch(self, candidates: Sequence[tuple[Sequence[str], Sequence[str] | None]]) -> list[bool]:
        """Decide, in order, which (matching words, full words or None) candidates to accept and index.

        Equivalent to checking them one by one: a candidate is compared with every row accepted before the
        batch and with the candidates of this batch accepted before it.
        """
        batch = self._prepare([m for m, _ in candidates])
        with_full = [i for i, (_, f) in enumerate(candidates) if f is not None]
        bench = np.zeros(len(candidates), dtype=bool)
        if with_full:
            bench[with_full] = self._touch_benchmark([candidates[i][1] for i in with_full])
        prior = self._against_index(batch)
        within = self._within_batch(batch)
        blocked: dict[int, list[int]] = {}
        for a, b in within:
            blocked.setdefault(b, []).append(a)
        accepted: set[int] = set()
        decisions = []
        for i in range(len(candidates)):
            ok = (
                len(batch.grams[i]) > 0
                and not prior[i]
                and not any(a in accepted for a in blocked.get(i, ()))
            )
            if not ok:
                self.rejected["similar"] += 1
            elif bench[i]:
                self.rejected["benchmark"] += 1
                ok = False
            if ok:
                accepted.add(i)
                self._store(batch.grams[i], batch.sigs[i], batch.keys[i].tolist())
            decisions.append(ok)
        return decisions

    def _store(self, grams: np.ndarray, sig: np.ndarray, keys: list[int]) -> None:
        index = len(self._grams)
        if index == len(self._sigs):
            self._sigs = np.concatenate([self._sigs, np.zeros_like(self._sigs)])
        self._sigs[index] = sig
        self._grams.append(grams)
        cap = self._bucket_cap
        for band, key in zip(self._buckets, keys, strict=True):
            members = band.get(key)
            # Most buckets hold one row: store a bare int (not tracked by the garbage collector, which would
            # otherwise rescan millions of one-element lists) and switch to a list on the second row.
            if members is None:
                band[key] = index
            elif members.__class__ is int:
                band[key] = [members, index]
            elif len(members) < cap:
                members.append(index)

    def __len__(self) -> int:
        return len(self._grams)
