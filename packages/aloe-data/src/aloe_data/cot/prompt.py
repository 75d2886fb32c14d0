"""The teacher prompt of a row, and answer forcing: asking for the answer letter after the reasoning.

The prompt is a ``cot`` template (see ``templates/cot.yaml``) rendered with the row's MCQA item, the
reference answer and the answer line format.

Answer forcing (the "budget forcing" of s1, Muennighoff et al. 2025): when a reasoning ends without an
answer (the model stopped early or ran out of ``max_tokens``), the stage appends ``"\\n\\nAnswer:"`` to
it and lets the model pick exactly one token among the row's option letters
(``SamplingParams.allowed_token_ids``), drawn like the reasoning (same temperature, the attempt's seed).
The picked letter is then verified like any other: a forced answer only passes if it is the reference.
Letters are tokenized the way they follow the prefix in text: ``" B"`` (one token in Llama-3, Mistral,
Qwen vocabularies); if some letter is not one token that way, the prefix gets the space and bare
letters are used; if neither works, forcing is off. Forcing needs ``min_words`` of reasoning first, so
an empty or near-empty reasoning is never turned into a bare forced answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aloe_data.templates import PromptTemplate, row_variables


def teacher_messages(row: Mapping[str, Any], template: PromptTemplate, answer_prefix: str) -> list[dict]:
    """The conversation that asks the teacher for a chain of thought ending in the answer line.

    Raises:
        jinja2.TemplateError: the template does not render for this row.
    """
    rendered = template.render(row_variables(row) | {"answer_prefix": answer_prefix})
    messages = [{"role": "system", "content": rendered.system}] if rendered.system else []
    return [*messages, {"role": "user", "content": rendered.user}]


def answer_line(answer_prefix: str, letter: str) -> str:
    return f"{answer_prefix.strip()} {letter}"


@dataclass(frozen=True)
class AnswerForcing:
    """How to ask a tokenizer's model for one answer letter: append ``suffix``, allow ``letter_ids``."""

    suffix: str  # appended to the stripped reasoning
    letter_ids: dict[str, int]

    def allowed(self, letters: Sequence[str]) -> tuple[int, ...] | None:
        """Token ids of ``letters``; None if one of them cannot be forced."""
        if any(letter not in self.letter_ids for letter in letters):
            return None
        return tuple(self.letter_ids[letter] for letter in letters)

    def letter_of(self, token_id: int) -> str | None:
        return next((letter for letter, i in self.letter_ids.items() if i == token_id), None)


def resolve_forcing(tokenizer: Any, answer_prefix: str, letters: Sequence[str]) -> AnswerForcing | None:
    """The :class:`AnswerForcing` for ``letters`` with this tokenizer (see the module docstring)."""
    prefix = "\n\n" + answer_prefix.strip()
    for suffix, form in ((prefix, " {}"), (prefix + " ", "{}")):
        ids: dict[str, int] = {}
        for letter in letters:
            encoded = tokenizer.encode(form.format(letter), add_special_tokens=False)
            if len(encoded) != 1:
                break
            ids[letter] = int(encoded[0])
        else:
            if len(set(ids.values())) == len(ids):
                return AnswerForcing(suffix, ids)
    return None
