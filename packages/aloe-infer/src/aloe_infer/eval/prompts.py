"""How a benchmark question becomes a prompt: the question block, the instructions, few-shot turns.

One rendering for every strategy, so zero-shot, CoT and Medprompt differ only in what they ask:

* the question block is the (optional) context, the question and the options as ``A. text`` lines, in
  the order given (Medprompt passes a shuffled order; the letters are always A, B, C... in order);
* with ``chat_template`` (the default, recorded in the results) the user turn is rendered with the
  model's own chat template and the generation prompt; zero-shot then appends ``answer_prefix`` to the
  assistant turn and scores the letter that follows (``" A"``), as lm-evaluation-harness scores a
  continuation; without it, prompts are plain text ending in ``answer_prefix``;
* few-shot examples (Medprompt) are earlier user/assistant turns, least similar first, so the most
  similar example sits right before the question;
* retrieved sources (``rag``, ``rag-cot``) sit between the instruction (followed by
  ``rag_instruction``) and the question block, as MedRAG lays them out: documents, then the question;
  their text is :func:`aloe_infer.retrieval.sources_section`'s, the same ``aloe infer ask`` shows.

The rendered text is tokenized once here (special tokens come from the template text itself, so no
second BOS is added) and that exact text is what predictions record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from aloe_core.config import StrictModel

ZERO_SHOT_INSTRUCTION = "Answer the following multiple-choice question with the letter of the correct option."
COT_INSTRUCTION = (
    "Answer the following multiple-choice question. Think step by step, then finish with a line of the "
    'form "Answer: X", where X is the letter of the correct option.'
)
RAG_INSTRUCTION = "Numbered sources that may help are given before the question."


class PromptConfig(StrictModel):
    """The words around a question. ``answer_prefix`` is what zero-shot scores after and what CoT
    answers are parsed by."""

    chat_template: bool = True
    system: str | None = None
    zero_shot_instruction: str = Field(ZERO_SHOT_INSTRUCTION, min_length=1)
    cot_instruction: str = Field(COT_INSTRUCTION, min_length=1)
    answer_prefix: str = Field("Answer:", min_length=1)
    rag_instruction: str = Field(RAG_INSTRUCTION, min_length=1)  # after the instruction, with sources


def letters_for(count: int) -> tuple[str, ...]:
    """``A, B, C, ...``: the letters a question with ``count`` options shows."""
    if not 2 <= count <= 26:
        raise ValueError(f"a question needs 2 to 26 options, got {count}")
    return tuple(chr(ord("A") + i) for i in range(count))


def question_block(question: str, option_texts: Sequence[str], context: str | None = None) -> str:
    """Context (if any), question, then one ``X. text`` line per option with letters A, B, C..."""
    lines = [
        f"{letter}. {text}" for letter, text in zip(letters_for(len(option_texts)), option_texts, strict=True)
    ]
    head = f"Context: {context.strip()}\n\n" if context else ""
    return f"{head}Question: {question.strip()}\n" + "\n".join(lines)


@dataclass(frozen=True)
class Example:
    """A solved example for few-shot prompts: its question block and the answer turn shown for it."""

    block: str
    answer: str


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    ids: list[int]


class PromptRenderer:
    """Renders and tokenizes prompts with one model's tokenizer (see the module docstring)."""

    def __init__(self, tokenizer: Any, config: PromptConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        if config.chat_template and getattr(tokenizer, "chat_template", None) is None:
            from aloe_core.errors import ConfigError

            raise ConfigError(
                "prompts.chat_template: the model's tokenizer has no chat template; set "
                "prompts.chat_template=false to score plain-text prompts"
            )

    def _messages(
        self, instruction: str, block: str, examples: Sequence[Example], sources: str | None = None
    ) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.config.system}] if self.config.system else []
        for example in examples:
            messages.append({"role": "user", "content": f"{instruction}\n\n{example.block}"})
            messages.append({"role": "assistant", "content": example.answer})
        if sources is not None:
            block = f"{sources}\n\n{block}"
            instruction = f"{instruction} {self.config.rag_instruction}"
        messages.append({"role": "user", "content": f"{instruction}\n\n{block}"})
        return messages

    def _text(self, messages: list[dict[str, str]]) -> str:
        if self.config.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        parts = [m["content"] for m in messages if m["role"] == "system"]
        for m in messages:
            if m["role"] == "user":
                parts.append(m["content"])
            elif m["role"] == "assistant":
                parts[-1] += "\n" + m["content"]
        return "\n\n".join(parts) + "\n"

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt: a chat-template text carries its own special tokens."""
        add_special = not self.config.chat_template
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def zero_shot(self, block: str, sources: str | None = None) -> RenderedPrompt:
        """The prompt whose next token is the answer letter (``answer_prefix`` already written);
        ``sources`` (a :func:`~aloe_infer.retrieval.sources_section`) go before the question."""
        text = (
            self._text(self._messages(self.config.zero_shot_instruction, block, (), sources))
            + self.config.answer_prefix
        )
        return RenderedPrompt(text, self.encode(text))

    def cot(self, block: str, examples: Sequence[Example] = (), sources: str | None = None) -> RenderedPrompt:
        """A reasoning prompt, with few-shot ``examples`` (least similar first) before the question and
        ``sources`` (as for :meth:`zero_shot`) before it in the last turn."""
        text = self._text(self._messages(self.config.cot_instruction, block, examples, sources))
        return RenderedPrompt(text, self.encode(text))
