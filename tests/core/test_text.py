"""Tokenising for matching: the batched tokeniser gives exactly the per-text regex tokens."""

from __future__ import annotations

import random

from aloe_core.text import words, words_of_texts

# ASCII word and non-word characters (including the \x1c-\x1f that str.split treats as whitespace) and
# non-ASCII ones that NFKC, case folding or Unicode \w treat specially: ligature, no-break space,
# Roman numeral, Arabic-Indic digit, titlecase digraph, degree sign, accented letter.
CHARS = ["a", "B", "Q", "q", " ", "\n", "_", "1", "-", "\x1c", "\x1f", "é", "°", "\u00a0", "ﬁ", "Ⅻ", "٣", "ǅ"]


def test_words_of_texts_equals_words_per_text():
    """Batches mixing ASCII texts (translate-and-split path) with others (regex path), in any order."""
    rng = random.Random(0)
    for _ in range(3000):
        texts = [
            "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(0, 6))
        ]
        tokens, counts = words_of_texts(texts)
        expected = [words(t) for t in texts]
        assert tokens == [w for e in expected for w in e], texts
        assert counts == [len(e) for e in expected], texts
