"""Fact sentences with paraphrase variants, the material answers are assembled from.

Each function returns a dict {aspect: sentence} for one record, choosing one wording per aspect (and a
random subset/order of list items), so two answers about the same drug rarely share long word runs.
"""

from __future__ import annotations

import random

from aloe_fixtures.corpus.facts import Artery, CranialNerve, Disease, Drug, Hormone, Lab, Nerve, Organism
from aloe_fixtures.corpus.phrasing import article, cap, join_list, pick, rint


def some(rng: random.Random, items: tuple[str, ...], low: int = 1, high: int = 4) -> list[str]:
    """A random non-empty subset of ``items`` (at most ``high``), in random order."""
    k = rint(rng, min(low, len(items)), min(high, len(items)))
    return rng.sample(list(items), k)


def drug_sentences(rng: random.Random, d: Drug) -> dict[str, str]:
    """Sentences about a drug: class, mechanism, uses, adverse, note (+ contra, signature when known)."""
    return {**_drug_core(rng, d), **_drug_risks(rng, d)}


def _drug_core(rng: random.Random, d: Drug) -> dict[str, str]:
    name = cap(d.name)
    return {
        "class": pick(
            rng,
            (
                f"{name} is {article(d.cls)} {d.cls}.",
                f"{name} belongs to the {d.cls} class.",
                f"Pharmacologically, {d.name} is classed as {article(d.cls)} {d.cls}.",
                f"{name} is a medicine from the {d.cls} group.",
            ),
        ),
        "mechanism": pick(
            rng,
            (
                f"It {d.mechanism}.",
                f"It works because it {d.mechanism}.",
                f"Its main action is that it {d.mechanism}.",
                f"In terms of mechanism, it {d.mechanism}.",
            ),
        ),
        "uses": pick(
            rng,
            (
                f"It is used for {join_list(some(rng, d.uses))}.",
                f"Common indications include {join_list(some(rng, d.uses))}.",
                f"Doctors prescribe it mainly for {join_list(some(rng, d.uses))}.",
                f"Typical reasons to take it are {join_list(some(rng, d.uses))}.",
            ),
        ),
    }


def _drug_risks(rng: random.Random, d: Drug) -> dict[str, str]:
    out = {
        "adverse": pick(
            rng,
            (
                f"Side effects to know about include {join_list(some(rng, d.adverse, 2))}.",
                f"The adverse effects most worth remembering are {join_list(some(rng, d.adverse, 2))}.",
                f"Possible side effects include {join_list(some(rng, d.adverse, 2))}.",
                f"Patients should be aware of {join_list(some(rng, d.adverse, 2))}.",
            ),
        ),
        "note": pick(
            rng,
            (
                f"A practical point: {d.note}.",
                f"It is also worth knowing that {d.note}.",
                f"Clinically, {d.note}.",
                f"One more useful fact: {d.note}.",
            ),
        ),
    }
    if d.contraindications:
        cis = join_list(some(rng, d.contraindications), "or")
        out["contra"] = pick(
            rng,
            (
                f"It should be avoided in {cis}.",
                f"Contraindications include {join_list(list(d.contraindications))}.",
                f"It is generally not used in {cis}.",
            ),
        )
    if d.signature:
        out["signature"] = pick(
            rng,
            (
                f"The classic adverse effect to remember is {d.signature}.",
                f"Its best-known side effect is {d.signature}.",
                f"Exam questions often link it to {d.signature}.",
            ),
        )
    return out


def disease_sentences(rng: random.Random, d: Disease) -> dict[str, str]:
    name = cap(d.name)
    return {
        "presentation": pick(
            rng,
            (
                f"{name} typically presents with {d.presentation}.",
                f"The classic picture of {d.name} is {d.presentation}.",
                f"People with {d.name} usually notice {d.presentation}.",
                f"Typical features of {d.name} are {d.presentation}.",
            ),
        ),
        "finding": pick(
            rng,
            (
                f"The key diagnostic finding is {d.finding}.",
                f"Diagnosis rests on {d.finding}.",
                f"Doctors confirm it with {d.finding}.",
                f"The finding that clinches it is {d.finding}.",
            ),
        ),
        "treatment": pick(
            rng,
            (
                f"First-line treatment is {d.treatment}.",
                f"The usual first treatment is {d.treatment}.",
                f"Management starts with {d.treatment}.",
                f"Initial therapy is {d.treatment}.",
            ),
        ),
        "detail": pick(
            rng,
            (
                f"{cap(d.treatment_detail)}.",
                f"Note that {d.treatment_detail}.",
                f"Importantly, {d.treatment_detail}.",
            ),
        ),
    }


def lab_sentences(rng: random.Random, lab: Lab, range_text: str, who: str) -> dict[str, str]:
    return {
        "range": pick(
            rng,
            (
                f"The usual reference range for {lab.name} in {who} is about {range_text}.",
                f"For {who}, {lab.name} normally sits around {range_text}.",
                f"Most laboratories quote {range_text} as the normal {lab.name} range for {who}.",
            ),
        ),
        "low": pick(
            rng,
            (
                f"A low value ({lab.low_term}) can be caused by "
                f"{join_list(some(rng, lab.low_causes, 2), 'or')}.",
                f"Causes of {lab.low_term} include {join_list(some(rng, lab.low_causes, 2))}.",
            ),
        ),
        "high": pick(
            rng,
            (
                f"A high value ({lab.high_term}) can result from "
                f"{join_list(some(rng, lab.high_causes, 2), 'or')}.",
                f"Causes of {lab.high_term} include {join_list(some(rng, lab.high_causes, 2))}.",
            ),
        ),
        "variation": pick(
            rng,
            (
                "Exact limits vary slightly between laboratories, so compare with the range printed on the "
                "report.",
                "Each laboratory sets its own limits, so the range on your report is the one that counts.",
                "Reference ranges differ a little from lab to lab.",
            ),
        ),
    }


def nerve_sentences(rng: random.Random, n: Nerve) -> dict[str, str]:
    return {
        "roots": pick(rng, (f"The {n.name} arises from {n.roots}.", f"Its root values are {n.roots}.")),
        "supply": pick(
            rng,
            (f"It supplies {n.supplies}.", f"Motor supply: {n.supplies}.", f"It innervates {n.supplies}."),
        ),
        "lesion": pick(
            rng,
            (
                f"Injury causes {n.lesion}.",
                f"A lesion produces {n.lesion}.",
                f"If it is damaged, expect {n.lesion}.",
            ),
        ),
        "cause": pick(
            rng, (f"A classic cause of injury is {n.cause}.", f"It is typically injured by {n.cause}.")
        ),
    }


def artery_sentences(rng: random.Random, a: Artery) -> dict[str, str]:
    return {
        "territory": pick(rng, (f"The {a.name} supplies {a.territory}.", f"Its territory is {a.territory}.")),
        "occlusion": pick(
            rng,
            (
                f"Occlusion or injury causes {a.occlusion}.",
                f"When it is blocked or damaged, the result is {a.occlusion}.",
            ),
        ),
    }


def cranial_sentences(rng: random.Random, c: CranialNerve) -> dict[str, str]:
    return {
        "function": pick(
            rng,
            (
                f"The {c.name} (cranial nerve {c.number}) {c.function}.",
                f"Cranial nerve {c.number}, the {c.name}, {c.function}.",
            ),
        ),
        "lesion": pick(rng, (f"A lesion causes {c.lesion}.", f"Damage shows up as {c.lesion}.")),
    }


def organism_sentences(rng: random.Random, o: Organism) -> dict[str, str]:
    return {
        "morphology": pick(
            rng,
            (f"{o.name} appears as {o.morphology}.", f"On microscopy, {o.name} is seen as {o.morphology}."),
        ),
        "disease": pick(
            rng, (f"It classically causes {o.disease}.", f"Its typical diseases are {o.disease}.")
        ),
        "feature": pick(
            rng, (f"A distinguishing feature: {o.feature}.", f"Useful to remember: {o.feature}.")
        ),
        "treatment": pick(
            rng, (f"Treatment is usually {o.treatment}.", f"It is treated with {o.treatment}.")
        ),
    }


def hormone_sentences(rng: random.Random, h: Hormone) -> dict[str, str]:
    return {
        "source": pick(
            rng, (f"{cap(h.name)} is made by {h.source}.", f"The source of {h.name} is {h.source}.")
        ),
        "action": pick(rng, (f"It {h.action}.", f"Its main effect is that it {h.action}.")),
        "regulation": pick(
            rng, (f"Its release is driven by {h.regulation}.", f"Secretion responds to {h.regulation}.")
        ),
    }
