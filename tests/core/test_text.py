"""The shared definition of text identity used by dedup and decontamination."""

from aloe_core.text import jaccard, matching_text, normalize_for_matching, word_ngrams


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
