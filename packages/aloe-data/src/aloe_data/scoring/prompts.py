"""DEITA's scorer prompts, how a conversation splits into scored turns, and how long prompts are cut.

The templates are those of DEITA's Llama scorers (``deita/selection/scorer/llama_scorer.py``), the
prompts its published complexity and quality scorers were trained on, verbatim: changing a single space
changes the scores. ``{instruction}`` and ``{output}`` are :meth:`str.format` fields, so a custom template
must write a literal brace as ``{{`` or ``}}``.

Truncation rule (:class:`PromptFitter`): a prompt longer than ``max_length`` tokens keeps the template
whole (its closing ``##Complexity: `` / ``##Quality: `` is where the score is read) and keeps the *start*
of each field. The token budget left by the template is shared between the fields: a field shorter than
an equal share keeps all of its tokens, and the rest goes to the longer field(s). The cut falls on a token
boundary of the field as tokenized on its own; the caller flags the row (``deita.truncated``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aloe_core.errors import AloeError

COMPLEXITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the complexity score of the following user query. \n"
    "##Query: {instruction}  \n##Complexity: "
)
QUALITY_TEMPLATE = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{instruction}\n#Response#:\n{output} \n##Quality: "
)
SCORE_TOKENS = ("1", "2", "3", "4", "5", "6")


def template_fields(template: str) -> set[str]:
    """The ``{name}`` fields of a format template; raises ValueError if it is not a valid template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_template(template: str, required: Sequence[str]) -> str:
    """Return ``template`` if its fields are exactly ``required``; raise ValueError naming the problem."""
    try:
        fields = template_fields(template)
    except ValueError as exc:
        raise ValueError(
            f"not a valid format template ({exc}); write literal braces as {{{{ and }}}}"
        ) from None
    if fields != set(required):
        raise ValueError(
            f"template fields are {sorted(fields)}, expected exactly {sorted(required)} "
            "(write literal braces as {{ and }})"
        )
    return template


@dataclass(frozen=True)
class Turn:
    """One user -> assistant exchange: what DEITA scores (complexity of ``instruction``, quality of
    ``response`` given ``instruction``)."""

    instruction: str
    response: str


def conversation_turns(messages: Iterable[Mapping[str, Any]]) -> list[Turn]:
    """The scored turns of a conversation, in order.

    Each assistant message closes one turn whose instruction is the user text since the previous
    assistant message (several user messages are joined by a blank line; none gives an empty
    instruction). System messages belong to no turn, as in DEITA's ShareGPT input. A trailing user
    message with no answer is a turn with an empty response (DEITA's rule for an unanswered last query).
    """
    turns: list[Turn] = []
    pending: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"] or ""
        if role == "user":
            pending.append(content)
        elif role == "assistant":
            turns.append(Turn("\n\n".join(pending), content))
            pending = []
    if pending:
        turns.append(Turn("\n\n".join(pending), ""))
    return turns


def row_messages(row: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """The conversation of a record: ``messages`` of an sft row, ``prompt`` + the chosen answer of a
    preference row. Raises AloeError for other kinds."""
    if kind == "sft":
        return list(row["messages"] or [])
    if kind == "preference":
        return [*(row["prompt"] or []), {"role": "assistant", "content": row["chosen"] or ""}]
    raise AloeError(f"DEITA scoring and selection read sft or preference rows, not {kind!r}")


def share_budget(lengths: Sequence[int], budget: int) -> list[int]:
    """Split ``budget`` tokens between fields of ``lengths`` tokens: short fields keep everything, long
    ones share what is left equally (remainder to the earlier field). Sum <= budget."""
    alloc = [0] * len(lengths)
    todo = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    left = max(budget, 0)
    while todo:
        share = left // len(todo)
        i = todo[0]
        if lengths[i] <= share:
            alloc[i] = lengths[i]
            left -= lengths[i]
            todo.pop(0)
            continue
        extra = left - share * len(todo)
        for rank, j in enumerate(sorted(todo)):
            alloc[j] = share + (1 if rank < extra else 0)
        break
    return alloc


class PromptFitter:
    """Tokenizes filled templates and cuts over-long ones (see the module docstring for the rule).

    Args:
        tokenizer: a transformers *fast* tokenizer (character offsets are needed to cut on tokens).
        max_length: the longest prompt, in tokens, the scorer reads.
        add_special_tokens: add BOS etc. as ``tokenizer.encode`` does by default (DEITA does).
    """

    def __init__(self, tokenizer: Any, max_length: int, add_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.add_special_tokens = add_special_tokens

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=self.add_special_tokens)["input_ids"]

    def check_template(self, template: str, fields: Sequence[str]) -> None:
        """Raise AloeError if the template alone (empty fields) does not fit in ``max_length``."""
        overhead = len(self.encode([template.format(**dict.fromkeys(fields, ""))])[0])
        if overhead >= self.max_length:
            raise AloeError(
                f"the scorer template alone is {overhead} tokens, not below max_length={self.max_length}; "
                "raise max_length or shorten the template"
            )

    def fit_all(self, template: str, rows: list[dict[str, str]]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of ``template`` filled with each of ``rows``, cut to ``max_length``; and whether
        each was cut."""
        ids = self.encode([template.format(**fields) for fields in rows])
        cut = [False] * len(rows)
        for i, row_ids in enumerate(ids):
            if len(row_ids) > self.max_length:
                ids[i], cut[i] = self._fit(template, rows[i]), True
        return ids, cut

    def _fit(self, template: str, fields: dict[str, str]) -> list[int]:
        names = list(fields)
        overhead = len(self.encode([template.format(**dict.fromkeys(names, ""))])[0])
        offsets = [
            self.tokenizer(fields[n], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            for n in names
        ]
        budget = self.max_length - overhead
        while True:
            alloc = share_budget([len(o) for o in offsets], budget)
            cut = {
                n: fields[n][: o[k - 1][1]] if k else ""
                for n, o, k in zip(names, offsets, alloc, strict=True)
            }
            ids = self.encode([template.format(**cut)])[0]
            # Re-tokenizing the joined text can merge across the cut and differ by a token or two.
            if len(ids) <= self.max_length or budget <= 0:
                return ids
            budget -= len(ids) - self.max_length
