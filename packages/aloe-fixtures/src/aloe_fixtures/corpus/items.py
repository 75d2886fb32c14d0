"""The in-memory items the generators produce, before they are written in a source format.

One item type per task family. ``matching_text`` gives the text that ``aloe_core.text.matching_text``
will see once a reader has turned the written row into a record (MCQA: question + sorted options; PubMedQA
is read as MCQA with the options yes / no / maybe; chat: every message; preference: prompt + chosen), so
distinctness can be enforced while generating; :func:`tokens` gives its words (and the words of every text
field, for the benchmark n-gram check) as the distinctness guard consumes them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from aloe_core.layouts import PUBMEDQA_OPTIONS
from aloe_core.text import mcqa_matching_text, words

LETTERS = "ABCDE"
# PubMedQA items are read as MCQA with these options (aloe-data's reader defines them).
YES_NO_MAYBE = tuple(option["text"] for option in PUBMEDQA_OPTIONS)


@dataclass(frozen=True)
class McqaItem:
    question: str
    options: tuple[str, ...]  # option texts in display order (letters A, B, ...)
    answer: int  # index of the correct option
    explanation: str
    subject: str  # MedMCQA-style subject, e.g. "Pharmacology"
    topic: str
    context: tuple[str, ...] = ()
    template: str = ""

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]

    def option_map(self) -> dict[str, str]:
        return {LETTERS[i]: text for i, text in enumerate(self.options)}

    def reordered(self, order: list[int]) -> McqaItem:
        """The same item with options in ``order`` (a permutation of indices); the answer follows."""
        options = tuple(self.options[i] for i in order)
        return replace(self, options=options, answer=order.index(self.answer))


@dataclass(frozen=True)
class YesNoItem:
    question: str
    contexts: tuple[str, ...]
    labels: tuple[str, ...]
    meshes: tuple[str, ...]
    decision: str  # yes | no | maybe
    long_answer: str
    year: int
    template: str = ""


@dataclass(frozen=True)
class ChatItem:
    """A conversation; ``messages`` may start with a system message and always ends with the assistant.

    ``alpaca_input`` is set when the row is meant for the Alpaca format with a separate ``input``: the
    user message is then ``instruction + "\\n\\n" + input`` (as the readers join them).
    """

    messages: tuple[tuple[str, str], ...]  # (role, content)
    style: str = ""
    alpaca_input: str | None = None

    @property
    def user_turns(self) -> list[str]:
        return [c for r, c in self.messages if r == "user"]

    @property
    def instruction(self) -> str:
        """The first user message without the Alpaca input part."""
        first = self.user_turns[0]
        if self.alpaca_input is not None:
            return first[: -len(self.alpaca_input) - 2]
        return first


@dataclass(frozen=True)
class PreferenceItem:
    prompt: str
    chosen: str
    rejected: str
    category: str


Item = McqaItem | YesNoItem | ChatItem | PreferenceItem


def matching_text(item: Item) -> str:
    """What dedup compares for this item once read (see module docstring)."""
    if isinstance(item, McqaItem):
        return mcqa_matching_text(item.question, [{"text": t} for t in item.options])
    if isinstance(item, YesNoItem):
        return mcqa_matching_text(item.question, [{"text": t} for t in YES_NO_MAYBE])
    if isinstance(item, ChatItem):
        return "\n".join(content for _, content in item.messages)
    return "\n".join([item.prompt, item.chosen])


def word_count(item: Item) -> int:
    """Approximate number of words in the matching text (whitespace split, no normalisation: cheap)."""
    if isinstance(item, McqaItem):
        return len(item.question.split()) + sum(len(o.split()) for o in item.options)
    if isinstance(item, YesNoItem):
        return len(item.question.split()) + 3
    if isinstance(item, ChatItem):
        return sum(len(c.split()) for _, c in item.messages)
    return len(item.prompt.split()) + len(item.chosen.split())


@functools.lru_cache(maxsize=1 << 16)
def _part_words(text: str) -> tuple[str, ...]:
    """Words of one short, often repeated text part (options, system prompts): cached."""
    return tuple(words(text))


def _words(text: str) -> list[str]:
    return list(_part_words(text)) if len(text) < 200 else words(text)


def tokens(item: Item) -> tuple[list[str], list[str] | None]:
    """(words of ``matching_text(item)``, words of every text field or None), computed part by part.

    Equal to ``aloe_core.text.words`` of the joined texts, because normalisation never merges words across
    the newline that joins parts; computing parts separately lets repeated parts (options) be cached.

    The full-text words feed the benchmark 13-gram check, which is only needed where a row can contain a
    run of answer options (MCQA items, chat rows quoting a multiple-choice question): benchmark items use
    their own stems and slot phrases shorter than 13 words, so any other 13-gram of theirs contains stem
    words no training template uses. Other rows get None (the test suite checks every row anyway).
    """
    if isinstance(item, McqaItem):
        question = _words(item.question)
        options = [_part_words(o) for o in item.options]
        ordered = sorted(options, key=" ".join)
        match = question + [w for o in ordered for w in o]
        context = [w for c in item.context for w in _words(c)]
        return match, context + question + [w for o in options for w in o] + _words(item.explanation)
    if isinstance(item, YesNoItem):
        return _words(item.question) + sorted(YES_NO_MAYBE), None
    if isinstance(item, ChatItem):
        match = [w for _, content in item.messages for w in _words(content)]
        return match, (match if item.style.startswith("mcq_explain") else None)
    return _words(item.prompt) + _words(item.chosen), None
