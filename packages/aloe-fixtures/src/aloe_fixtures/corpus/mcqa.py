"""Multiple-choice items for training rows (all generators, weighted) and for the held-out benchmark.

Benchmark items use their own question stems, never used for training rows, and only short fact slots
(names, classes, effects of at most a few words), so that a training row cannot share a 13-word n-gram
with a benchmark item unless it was planted as a leak (the generator also checks this, see ``guard``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aloe_fixtures.corpus import mcqa_clinical, mcqa_drugs, mcqa_science
from aloe_fixtures.corpus.facts_clinical import DISEASES
from aloe_fixtures.corpus.facts_drugs import DRUGS, lists_effect, similar
from aloe_fixtures.corpus.facts_science import ARTERIES, CRANIAL_NERVES, HORMONES, NERVES, ORGANISMS
from aloe_fixtures.corpus.items import McqaItem
from aloe_fixtures.corpus.mcqa_common import assemble, distractors
from aloe_fixtures.corpus.mix import Mix
from aloe_fixtures.corpus.phrasing import article, cap, cumulative, pick, rint, weighted

Generator = Callable[[random.Random, int, str], McqaItem | None]

# Weights reflect a plausible mix of medical exam topics (pharmacology and clinical medicine dominate).
WEIGHTED: tuple[tuple[Generator, float], ...] = (
    *((g, 1.2) for g in mcqa_drugs.GENERATORS),
    *((g, 1.4) for g in mcqa_clinical.GENERATORS[:3]),
    *((g, 0.8) for g in mcqa_clinical.GENERATORS[3:]),
    *((g, 0.7) for g in mcqa_science.GENERATORS),
)
_GENS = tuple(g for g, _ in WEIGHTED)
_CUM = cumulative(w for _, w in WEIGHTED)


def make_mix(styles: dict[str, float]) -> Mix:
    """An adaptive mix over (generator, style) pairs, styles weighted as given (e.g. 70% short)."""
    options = [(g, s) for g, _ in WEIGHTED for s in styles]
    weights = [w * sw for _, w in WEIGHTED for sw in styles.values()]
    return Mix(options, weights)


def generate(rng: random.Random, n_options: int, style: str = "vignette", mix: Mix | None = None) -> McqaItem:
    """One training MCQA item with ``n_options`` options, in ``style`` ("vignette" or "short") or, with a
    ``mix`` (see :func:`make_mix`), in the style of the drawn pair."""
    while True:
        if mix is not None:
            gen, chosen_style = mix.choose(rng)
        else:
            gen, chosen_style = weighted(rng, _GENS, _CUM), style
        item = gen(rng, n_options, chosen_style)
        if item is not None:
            return item


# -- benchmark ------------------------------------------------------------------------------------------


def _short(text: str, limit: int = 7) -> bool:
    return len(text.split()) <= limit


# Benchmark slot phrases stay at most this long, so that every 13-gram of a benchmark question contains
# benchmark-only stem words (see ``items.tokens``).
SLOT_WORDS = 9


def _bench_drug_class(rng: random.Random, n: int) -> McqaItem | None:
    drug = pick(rng, DRUGS)
    others = [d for d in DRUGS if not similar(d.name, drug.name)]
    wrong = distractors(
        rng, drug.cls, [d.cls for d in others], n - 1, [d.cls for d in others if d.group == drug.group]
    )
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"On a ward round a junior doctor is asked which family of medicines the {drug.name} charted "
            "for a "
            f"patient aged {rint(rng, 30, 90)} comes from. Which reply is correct?",
            f"A medication reconciliation lists {drug.name} for a patient aged {rint(rng, 30, 90)} years. "
            "Under "
            f"which pharmacological heading should it be filed?",
            f"While teaching {rint(rng, 6, 40)} students, a pharmacist holds up a box of {drug.name}. Which "
            "family "
            f"does this agent belong to?",
        ),
    )
    explanation = f"{cap(drug.name)} is {article(drug.cls)} {drug.cls}."
    return assemble(
        rng, question, drug.cls, wrong, explanation, "Pharmacology", "Drug classes", "bench.drug_class"
    )


def _bench_effect(rng: random.Random, n: int) -> McqaItem | None:
    drug = pick(rng, [d for d in DRUGS if d.signature and _short(d.signature)])
    effect = drug.signature or ""
    pool = [d.name for d in DRUGS if not similar(d.name, drug.name) and not lists_effect(d, effect)]
    wrong = distractors(rng, drug.name, pool, n - 1)
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"A pharmacovigilance officer receives {rint(rng, 3, 60)} reports of {effect}. Which of these "
            "agents "
            f"should be suspected first?",
            f"Out of the following, which agent would a prescriber most readily blame for new {effect} in a "
            f"person aged {rint(rng, 25, 85)}?",
        ),
    )
    explanation = f"{cap(effect)} is characteristic of {drug.name}."
    return assemble(
        rng, question, drug.name, wrong, explanation, "Pharmacology", "Adverse effects", "bench.effect"
    )


def _bench_treatment(rng: random.Random, n: int) -> McqaItem | None:
    disease = pick(
        rng, [d for d in DISEASES if _short(d.treatment) and all(_short(w) for w in d.wrong_treatments)]
    )
    wrong = distractors(rng, disease.treatment, disease.wrong_treatments, n - 1)
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"For an otherwise uncomplicated case of {disease.name} in a person aged "
            f"{rint(rng, *disease.age)}, "
            f"guidelines favour which option as the starting therapy?",
            f"A registrar aged {rint(rng, 27, 40)} asks what should be offered first once {disease.name} is "
            f"confirmed. Which choice is best?",
        ),
    )
    explanation = f"First-line therapy for {disease.name} is {disease.treatment}."
    return assemble(
        rng, question, disease.treatment, wrong, explanation, "Medicine", "Therapeutics", "bench.treatment"
    )


def _bench_nerve(rng: random.Random, n: int) -> McqaItem | None:
    nerve = pick(rng, [x for x in NERVES if _short(x.cause, SLOT_WORDS) and _short(x.lesion, SLOT_WORDS)])
    wrong = distractors(rng, nerve.name, [x.name for x in NERVES if x is not nerve], n - 1)
    if wrong is None:
        return None
    question = (
        f"Following {nerve.cause}, a patient of {rint(rng, 18, 80)} years is left with {nerve.lesion}. "
        f"Which peripheral nerve has been damaged?"
    )
    explanation = f"{cap(nerve.lesion)} indicates damage to the {nerve.name}."
    return assemble(
        rng, question, nerve.name, wrong, explanation, "Anatomy", "Peripheral nerves", "bench.nerve"
    )


def _bench_artery(rng: random.Random, n: int) -> McqaItem | None:
    artery = pick(rng, [a for a in ARTERIES if _short(a.occlusion, SLOT_WORDS)])
    wrong = distractors(rng, artery.name, [a.name for a in ARTERIES if a is not artery], n - 1)
    if wrong is None:
        return None
    question = (
        f"Angiography in a person aged {rint(rng, 40, 90)} accounts for {artery.occlusion} by disease in "
        f"one vessel. Which vessel is it?"
    )
    explanation = f"The {artery.name} supplies {artery.territory}."
    return assemble(rng, question, artery.name, wrong, explanation, "Anatomy", "Blood supply", "bench.artery")


def _bench_organism(rng: random.Random, n: int) -> McqaItem | None:
    org = pick(
        rng, [o for o in ORGANISMS if _short(o.disease, SLOT_WORDS) and _short(o.morphology, SLOT_WORDS)]
    )
    wrong = distractors(rng, org.name, [o.name for o in ORGANISMS if o is not org], n - 1)
    if wrong is None:
        return None
    question = (
        f"Specimens from a person aged {rint(rng, 18, 85)} with {org.disease} show {org.morphology}. "
        f"Which pathogen fits best?"
    )
    explanation = f"{org.name} is seen as {org.morphology} and causes {org.disease}."
    return assemble(
        rng, question, org.name, wrong, explanation, "Microbiology", "Pathogens", "bench.organism"
    )


def _bench_cranial(rng: random.Random, n: int) -> McqaItem | None:
    cn = pick(rng, [c for c in CRANIAL_NERVES if _short(c.lesion, SLOT_WORDS)])
    label = f"{cn.name} (cranial nerve {cn.number})"
    pool = [f"{c.name} (cranial nerve {c.number})" for c in CRANIAL_NERVES if c is not cn]
    wrong = distractors(rng, label, pool, n - 1)
    if wrong is None:
        return None
    question = (
        f"Bedside testing in someone aged {rint(rng, 20, 85)} reveals {cn.lesion}. Which nerve is at fault?"
    )
    explanation = f"The {cn.name} {cn.function}."
    return assemble(rng, question, label, wrong, explanation, "Anatomy", "Cranial nerves", "bench.cranial")


def _bench_hormone(rng: random.Random, n: int) -> McqaItem | None:
    h = pick(rng, HORMONES)
    wrong = distractors(rng, h.source, [x.source for x in HORMONES if x is not h], n - 1)
    if wrong is None:
        return None
    question = pick(
        rng,
        (
            f"In revision session {rint(rng, 2, 30)} on secretory cells, {h.name} is said to originate "
            "mainly "
            f"from where?",
            f"Tracing {h.name} back to the cells that make it, where does a physiologist with "
            f"{rint(rng, 2, 40)} "
            f"years of experience end up?",
        ),
    )
    explanation = f"{cap(h.name)} comes from {h.source}."
    return assemble(rng, question, h.source, wrong, explanation, "Physiology", "Secretion", "bench.hormone")


BENCH_GENERATORS = (
    _bench_drug_class,
    _bench_effect,
    _bench_treatment,
    _bench_nerve,
    _bench_artery,
    _bench_organism,
    _bench_cranial,
    _bench_hormone,
)


def generate_benchmark(rng: random.Random, n_options: int) -> McqaItem:
    """One held-out benchmark item with ``n_options`` options."""
    while True:
        item = pick(rng, BENCH_GENERATORS)(rng, n_options)
        if item is not None:
            return item
