"""Open instruction/answer conversations: many instruction styles, single- and multi-turn, system prompts.

A style builds one exchange (:class:`Exchange`): the user's request, the answer, optionally the same
request split into an Alpaca ``instruction`` + ``input``, and follow-up exchanges a multi-turn conversation
can continue with. :func:`generate` turns exchanges into a :class:`~aloe_fixtures.corpus.items.ChatItem`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aloe_fixtures.corpus import chat_styles
from aloe_fixtures.corpus.chat_styles import Exchange
from aloe_fixtures.corpus.items import ChatItem
from aloe_fixtures.corpus.mix import Mix
from aloe_fixtures.corpus.phrasing import cumulative, pick, rint, weighted

SYSTEM_PROMPTS = (
    "You are a careful medical assistant. Give accurate, evidence-based information and say when a clinician "
    "should be consulted.",
    "You are a clinical pharmacology tutor helping students prepare for exams. Be precise and concise.",
    "You are a friendly health educator. Explain things in plain language without jargon.",
    "You are an assistant for hospital doctors. Answer with clinically relevant detail.",
    "You are a medical knowledge assistant. Structure answers clearly and flag uncertainty.",
    "You help nurses with quick, reliable answers about medicines and conditions.",
    "You are a patient-information assistant. Be kind and clear, and never replace a doctor's advice.",
    "You are a medical exam coach. Explain why the right answer is right and why the others are wrong.",
    "Answer medical questions accurately. Keep answers focused on what the user asked.",
    "You are a knowledgeable pharmacist answering questions from the public.",
    "You are a teaching assistant for a physiology and anatomy course.",
    "You support primary care clinicians with concise summaries of diagnosis and first-line management.",
)


Style = Callable[[random.Random], Exchange]

STYLES: tuple[tuple[Style, float], ...] = (
    (chat_styles.drug_explain, 1.5),
    (chat_styles.drug_side_effects, 1.0),
    (chat_styles.drug_compare, 1.0),
    (chat_styles.disease_patient, 1.2),
    (chat_styles.disease_summary, 1.0),
    (chat_styles.case_reasoning, 1.2),
    (chat_styles.lab_interpretation, 1.0),
    (chat_styles.list_treatments, 0.8),
    (chat_styles.mcq_explain, 1.0),
    (chat_styles.abstract_summary, 0.7),
    (chat_styles.anatomy_explain, 0.7),
    (chat_styles.micro_explain, 0.6),
    (chat_styles.physiology_explain, 0.5),
    (chat_styles.quick_fact, 0.4),
)
_FUNCS = tuple(s for s, _ in STYLES)
_CUM = cumulative(w for _, w in STYLES)


def make_mix() -> Mix:
    """An adaptive mix over the instruction styles (see :mod:`aloe_fixtures.corpus.mix`)."""
    return Mix(_FUNCS, [w for _, w in STYLES])


def _exchange(rng: random.Random, alpaca: bool, mix: Mix | None) -> tuple[str, Exchange]:
    while True:
        style = mix.choose(rng) if mix is not None else weighted(rng, _FUNCS, _CUM)
        ex = chat_styles.personalize(rng, style(rng))
        if not alpaca or ex.instruction is not None or rng.random() < 0.6:
            return style.__name__, ex


def generate(rng: random.Random, fmt: str, mix: Mix | None = None) -> ChatItem:
    """A conversation for ``fmt`` ("openai", "sharegpt" or "alpaca").

    Alpaca rows are single-turn without a system prompt and use ``input`` when the style provides one;
    OpenAI/ShareGPT rows get a system prompt 35% of the time and continue with follow-ups 30% of the time.
    """
    alpaca = fmt == "alpaca"
    name, ex = _exchange(rng, alpaca, mix)
    if alpaca:
        if ex.instruction is not None and ex.input is not None and rng.random() < 0.7:
            user = f"{ex.instruction}\n\n{ex.input}"
            return ChatItem((("user", user), ("assistant", ex.answer)), name, alpaca_input=ex.input)
        return ChatItem((("user", ex.user), ("assistant", ex.answer)), name)
    messages: list[tuple[str, str]] = []
    if rng.random() < 0.35:
        messages.append(("system", pick(rng, SYSTEM_PROMPTS)))
    messages += [("user", ex.user), ("assistant", ex.answer)]
    if ex.followups and rng.random() < 0.3:
        turns = rng.sample(ex.followups, rint(rng, 1, min(2, len(ex.followups))))
        for question, answer in turns:
            messages += [("user", question), ("assistant", answer)]
        name += ".multi"
    return ChatItem(tuple(messages), name)
