"""Factual preference pairs: the chosen answer states the fact, the rejected one a confident wrong fact.

Each builder returns (prompt, chosen, rejected). Wrong facts come from the table itself (another drug's
class, a listed wrong treatment, a specific effect the drug does not list), so they are wrong for sure.
"""

from __future__ import annotations

import functools
import random

from aloe_fixtures.corpus.facts_clinical import DISEASES, LABS
from aloe_fixtures.corpus.facts_drugs import BY_NAME, DRUGS, SPECIFIC_EFFECTS, lists_effect, similar
from aloe_fixtures.corpus.facts_science import NERVES
from aloe_fixtures.corpus.mcqa_clinical import adult, with_unit
from aloe_fixtures.corpus.phrasing import article, article_for_number, cap, duration, join_list, pick, rint
from aloe_fixtures.corpus.sentences import disease_sentences, drug_sentences

Pair = tuple[str, str, str]


def personal(rng: random.Random, age: int) -> str:
    """A closing sentence tied to the asker's age, so answers to similar prompts differ."""
    return pick(
        rng,
        (
            f"At {age}, your doctor will also take your other conditions and medicines into account.",
            f"For someone aged {age}, the details of the plan may be adjusted to kidney function and other "
            f"medicines.",
            f"Since you mention being {age}, it is worth asking whether any of this changes for your age "
            "group.",
            f"Your care team can tell you how this applies to {article_for_number(age)} {age}-year-old with "
            "your "
            f"history.",
            f"Age {age} does not change the main facts, but your doctor may adjust the details.",
        ),
    )


def drug_class(rng: random.Random) -> Pair:
    d, age = pick(rng, DRUGS), rint(rng, 19, 85)
    wrong = pick(rng, _other_classes(d.name))
    s = drug_sentences(rng, d)
    prompt = pick(
        rng,
        (
            f"What kind of drug is {d.name}? I'm {age} and just got a prescription for it.",
            f"Which drug class does {d.name} belong to, and how does it work? I'm {age}.",
            f"I'm {age}. My new tablets are {d.name}; what type of medicine is that?",
            f"My pharmacist handed me {d.name} today. I'm {age}; what family of drugs is it in?",
            f"Can you tell me what {d.name} is? I'm {age} and want to understand my prescription.",
        ),
    )
    extra = rng.sample([s["adverse"], s["note"], s.get("signature", "")], rint(rng, 0, 2))
    chosen = " ".join(p for p in [s["class"], s["mechanism"], s["uses"], *extra, personal(rng, age)] if p)
    rejected = (
        f"{cap(d.name)} is {article(wrong)} {wrong}. That is all there is to it, and it works like any other."
    )
    return prompt, chosen, rejected


@functools.cache
def _other_classes(name: str) -> tuple[str, ...]:
    own = BY_NAME[name].cls
    return tuple(x.cls for x in DRUGS if not similar(x.name, name) and x.cls != own)


def treatment(rng: random.Random) -> Pair:
    dz, age = pick(rng, DISEASES), rint(rng, 19, 85)
    s = disease_sentences(rng, dz)
    prompt = pick(
        rng,
        (
            f"What is the first-line treatment for {dz.name}? Asking for a patient aged {age}.",
            f"How is {dz.name} usually treated first? My relative is {age}.",
            f"I'm {age} and was told I have {dz.name}. What is normally tried first?",
        ),
    )
    middle = [s["detail"], s["finding"], s["presentation"]]
    rng.shuffle(middle)
    chosen = " ".join([s["treatment"], *middle[: rint(rng, 1, 3)], personal(rng, age)])
    wrong = pick(rng, dz.wrong_treatments)
    rejected = (
        f"The standard first-line treatment for {dz.name} is {wrong}. Nearly every patient gets that first."
    )
    return prompt, chosen, rejected


@functools.cache
def _absent_specific(name: str) -> tuple[str, ...]:
    d = BY_NAME[name]
    return tuple(
        x.signature
        for x in DRUGS
        if x.signature in SPECIFIC_EFFECTS and not lists_effect(d, x.signature) and not similar(x.name, name)
    )


_WITH_SIGNATURE = tuple(d for d in DRUGS if d.signature)


def side_effect(rng: random.Random) -> Pair:
    d, age, weeks = pick(rng, _WITH_SIGNATURE), rint(rng, 19, 85), rint(rng, 2, 30)
    prompt = f"What is the classic side effect of {d.name}? I've been on it for {weeks} weeks and I'm {age}."
    others = [a for a in d.adverse if a != d.signature][:3]
    parts = [f"The classic adverse effect of {d.name} is {d.signature}."]
    if others:
        parts.append(f"Other possible effects include {join_list(others)}.")
    chosen = " ".join([*parts, f"{cap(d.note)}.", personal(rng, age)])
    wrong = pick(rng, _absent_specific(d.name))
    return prompt, chosen, f"The classic side effect of {d.name} is {wrong}. Almost everyone on it gets that."


def reference_range(rng: random.Random) -> Pair:
    lab, age = pick(rng, LABS), rint(rng, 19, 85)
    width = lab.high - lab.low
    shift = width * pick(rng, (1.5, 2.0, -1.5)) if lab.low - 1.5 * width > 0 else width * 1.5
    fmt = f".{lab.decimals}f"
    right = with_unit(f"{lab.low:{fmt}}-{lab.high:{fmt}}", lab)
    wrong = with_unit(f"{lab.low + shift:{fmt}}-{lab.high + shift:{fmt}}", lab)
    prompt = f"What's the normal {lab.name} for {adult(lab)}? Mine was checked {duration(rng)} and I'm {age}."
    chosen = (
        f"For {adult(lab)} the usual reference range is about {right}, though each laboratory sets slightly "
        f"different limits. Below it is called {lab.low_term} and above it {lab.high_term}. "
        f"{personal(rng, age)}"
    )
    return prompt, chosen, f"Normal {lab.name} is {wrong}. Anything outside that is dangerous."


def nerve(rng: random.Random) -> Pair:
    n, age = pick(rng, NERVES), rint(rng, 19, 85)
    wrong = pick(rng, [x.name for x in NERVES if x is not n])
    tail = pick(
        rng,
        (
            "Nerve conduction studies can confirm it.",
            "Recovery depends on the type and site of injury.",
            "Examining the other muscles it supplies helps confirm the level.",
        ),
    )
    prompt = (
        f"{cap(article_for_number(age))} {age}-year-old has {n.lesion} {duration(rng)}. Which nerve is "
        "injured?"
    )
    chosen = (
        f"This points to the {n.name} ({n.roots}), which supplies {n.supplies}. A classic cause is "
        f"{n.cause}. {tail} {personal(rng, age)}"
    )
    return prompt, chosen, f"That is the {wrong}. It is always that nerve in these cases."


FACTUAL = (drug_class, treatment, side_effect, reference_range, nerve)
