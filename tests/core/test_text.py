"""The shared definition of text identity used by dedup and decontamination."""

import random

from aloe_core.text import jaccard, matching_text, normalize_for_matching, word_ngrams, words, words_of_texts


def test_normalisation_ignores_case_space_punctuation_and_width():
    assert normalize_for_matching("  Metformin,  first-LINE!\u00a0") == "metformin first line"
    assert normalize_for_matching("ＡＢＣ ﬁ") == "abc fi"
    assert normalize_for_matching("...") == ""


def test_word_ngrams_short_and_empty():
    assert word_ngrams("a b c", 5) == {"a b c"}
    assert word_ngrams("", 5) == set()
    assert word_ngrams("a b c d e f", 5) == {"a b c d e", "b c d e f"}
    assert jaccard(set(), set()) == 0.0
    assert jaccard({1, 2}, {2, 3}) == 1 / 3


def test_mcqa_matching_text_ignores_option_order_and_answer():
    a = {
        "mcqa": {"question": "Q", "options": [{"letter": "A", "text": "x"}, {"letter": "B", "text": "y"}]},
        "messages": [{"role": "assistant", "content": "A"}],
    }
    b = {
        "mcqa": {"question": "q.", "options": [{"letter": "A", "text": "Y"}, {"letter": "B", "text": "x"}]},
        "messages": [{"role": "assistant", "content": "B"}],
    }
    assert matching_text(a) == matching_text(b)
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert matching_text(chat) == "hi\nyo"


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
