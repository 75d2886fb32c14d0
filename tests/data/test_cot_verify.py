"""Reading the final answer out of hand-written model outputs of every awkward shape.

Each case is (output text, letters the text states, verdict against reference B). A wrong verdict in
either direction is a real failure: a false ``verified`` puts a wrong answer into training data, a false
``no_answer`` throws away a good reasoning.
"""

from __future__ import annotations

import pytest

from aloe_data.cot.prompt import resolve_forcing
from aloe_infer.answers import extract_answer, has_answer_line, verify

OPTIONS = [
    {"letter": "A", "text": "Metformin"},
    {"letter": "B", "text": "Aspirin"},
    {"letter": "C", "text": "Insulin glargine"},
    {"letter": "D", "text": "Insulin"},
]

CASES = [
    # the requested format and its markdown variants
    ("Aspirin inhibits COX-1.\n\nAnswer: B", ("B",), "verified"),
    ("**Answer:** B. Aspirin", ("B",), "verified"),
    ("The answer: **B**", ("B",), "verified"),
    ("Final answer: (B)", ("B",), "verified"),
    ("ANSWER: B", ("B",), "verified"),
    # the letter in prose, lower case
    ("Platelets are inhibited irreversibly, so the answer is (b).", ("B",), "verified"),
    ("Answer: b", ("B",), "verified"),
    ("The correct answer is option C.", ("C",), "wrong"),
    ("Option A is incorrect. Option B is correct.", ("B",), "verified"),
    ("(B) is the correct answer.", ("B",), "verified"),
    ("The answer is not A; the answer is B.", ("B",), "verified"),
    ("I initially thought the answer was A, but on reflection.\nAnswer: B", ("B",), "verified"),
    ("Reasoning about each option...\n\nB", ("B",), "verified"),
    # option text instead of a letter (the longest matching option wins: glargine is not plain insulin)
    ("Answer: aspirin", ("B",), "verified"),
    ("The answer is Aspirin because it blocks thromboxane.", ("B",), "verified"),
    ("Answer: Insulin glargine", ("C",), "wrong"),
    ("Answer: insulin", ("D",), "wrong"),
    # two answers
    ("The answer is A.\nAnswer: B", ("A", "B"), "ambiguous"),
    ("Answer: A and B", ("A", "B"), "ambiguous"),
    ("Answer: B. Metformin", ("B", "A"), "ambiguous"),  # letter and option text disagree
    # no answer
    ("Aspirin and metformin have different mechanisms.", (), "no_answer"),
    ("The answer is a drug that blocks COX.", (), "no_answer"),  # "a" is an article, not option A
    ("I think the answer seems to be unclear.", (), "no_answer"),
    ("Answer: E", (), "no_answer"),  # not an option letter
    ("", (), "no_answer"),
]


@pytest.mark.parametrize(("text", "letters", "outcome"), CASES, ids=[c[0][:40] for c in CASES])
def test_extraction_and_verdict(text, letters, outcome):
    assert extract_answer(text, OPTIONS).letters == letters
    verdict = verify(text, OPTIONS, "B")
    assert verdict.outcome == outcome
    assert verdict.letter == (letters[0] if len(letters) == 1 else None)


def test_custom_answer_prefix_counts_as_an_answer_statement():
    text = "Reasoning.\nRespuesta final: B"
    assert verify(text, OPTIONS, "B", answer_prefix="Respuesta final:").outcome == "verified"
    assert verify(text, OPTIONS, "B").outcome == "no_answer"  # the default prefix does not read Spanish


def test_yes_no_maybe_options_map_from_words():
    options = [
        {"letter": "A", "text": "yes"},
        {"letter": "B", "text": "no"},
        {"letter": "C", "text": "maybe"},
    ]
    assert verify("The evidence supports it.\nAnswer: yes", options, "A").outcome == "verified"
    assert verify("Answer: maybe", options, "A").outcome == "wrong"
    assert verify("Answer: yes or no", options, "A").outcome == "ambiguous"
    assert verify("Answer: yes, because the trial met its endpoint", options, "A").outcome == "verified"


def test_answer_line_detection():
    assert has_answer_line("Because...\n\nAnswer: B\n")
    assert has_answer_line("Because...\n**Answer:** B")
    assert not has_answer_line("Answer: B\nbecause it is")
    assert not has_answer_line("")


def test_answer_forcing_uses_single_letter_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    forcing = resolve_forcing(tokenizer, "Answer:", ["A", "B", "C", "D"])
    assert forcing is not None and forcing.suffix == "\n\nAnswer:"
    for letter, token in forcing.letter_ids.items():
        assert tokenizer.decode([token]) == f" {letter}"
    # In context the letter token is exactly what the tokenizer produces for the answer line.
    ids = tokenizer.encode("Reasoning.\n\nAnswer: C", add_special_tokens=False)
    assert ids[-1] == forcing.letter_ids["C"]
    assert forcing.allowed(["A", "B"]) == (forcing.letter_ids["A"], forcing.letter_ids["B"])
    assert forcing.allowed(["A", "Q"]) is None
