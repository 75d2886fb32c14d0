"""PubMedQA-like yes/no/maybe items: a research question, a structured synthetic abstract, a decision.

The decision follows the fact table: an association the table lists is studied with a clearly positive
result ("yes"); a pairing the table does not support is studied with a null result ("no"); "maybe" items
ask about a narrower subgroup or time window and report an inconclusive result. Study sizes, effect
estimates and confidence intervals are random, which keeps contexts apart; questions vary by frame,
population and setting (the generator's distinctness check rejects questions that come out too similar).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from aloe_fixtures.corpus.facts import Disease
from aloe_fixtures.corpus.facts_clinical import DISEASES
from aloe_fixtures.corpus.facts_drugs import DRUGS, SPECIFIC_EFFECTS, lists_effect, similar
from aloe_fixtures.corpus.items import YesNoItem
from aloe_fixtures.corpus.phrasing import article, cap, cumulative, pick, rint, sex_for, weighted

POPULATIONS = (
    "adults aged 40 to 75",
    "patients in nursing homes",
    "adults with heart failure",
    "adults with COPD",
    "adults with hypertension",
    "university employees",
    "adults with low income",
    "shift workers",
    "adults",
    "older adults",
    "adults over 65",
    "middle-aged adults",
    "women",
    "men",
    "young adults",
    "adults with chronic kidney disease",
    "adults with obesity",
    "adults with diabetes",
    "hospitalized adults",
    "outpatients",
    "adults in rural areas",
    "adults attending urban clinics",
    "veterans",
    "smokers",
    "adults with multimorbidity",
    "frail older people",
    "people of working age",
    "adults with prior stroke",
)
SETTINGS = (
    "in a Scandinavian registry",
    "in a South American cohort",
    "in an Australian cohort",
    "in rural clinics",
    "in a teaching hospital",
    "in a veterans health system",
    "in community health centers",
    "in a UK cohort",
    "in primary care",
    "in a tertiary referral center",
    "in a national registry",
    "in community pharmacies",
    "in a multicenter cohort",
    "in routine practice",
    "in a regional health network",
    "in academic hospitals",
    "in an insurance claims database",
    "in outpatient clinics",
    "in a prospective cohort",
    "in general practice",
    "across several European centers",
    "in a North American health system",
    "in an Asian cohort",
)
DESIGNS = {
    "effect": (
        "retrospective cohort study",
        "prospective cohort study",
        "nested case-control study",
        "population-based cohort study",
    ),
    "treatment": (
        "randomized controlled trial",
        "pragmatic randomized trial",
        "prospective cohort study",
        "multicenter observational study",
    ),
    "finding": ("diagnostic accuracy study", "cross-sectional study", "prospective diagnostic study"),
}
MODELS = {
    "effect": (
        "multivariable logistic regression",
        "Cox proportional hazards models",
        "propensity score matching",
    ),
    "treatment": ("an intention-to-treat analysis", "multivariable regression", "propensity score weighting"),
    "finding": (
        "receiver operating characteristic analysis",
        "a blinded comparison with the reference standard",
    ),
}
# "maybe" items narrow the question to a subgroup or window where the evidence is thin.
WINDOWS = {
    "effect": (
        "during the first month of treatment",
        "after the first year of treatment",
        "at low doses",
        "in patients younger than 40",
        "when combined with other drugs",
    ),
    "treatment": (
        "in patients with severe disease",
        "in patients with several comorbidities",
        "in the oldest patients",
        "when started late in the illness",
    ),
    "finding": (
        "early in the disease course",
        "in patients with comorbid conditions",
        "in the oldest patients",
        "at the first presentation",
    ),
}


@dataclass(frozen=True)
class Claim:
    """What one item studies: a subject, an outcome, the expected decision and the table's explanation."""

    kind: str  # "effect", "treatment", "finding"
    subject: str
    outcome: str
    decision: str
    topic: str  # MeSH-like heading
    background: str
    why: str


# Effects that only make sense in children or pregnancy; the studied populations here are adults.
_NOT_ADULT = ("children", "pregnan", "neural tube", "teratogen", "mononucleosis", "Reye")


def _adult_effect(effect: str) -> bool:
    return not any(k.lower() in effect.lower() for k in _NOT_ADULT)


@functools.cache
def _absent_effects(name: str) -> tuple[str, ...]:
    """Specific effects of other drugs that drug ``name`` does not cause (safe "no" answers)."""
    drug = next(d for d in DRUGS if d.name == name)
    return tuple(
        d.signature
        for d in DRUGS
        if d.signature in SPECIFIC_EFFECTS
        and d.group != drug.group
        and not similar(d.name, name)
        and not lists_effect(drug, d.signature)
    )


_STUDIED = tuple(d for d in DRUGS if any(_adult_effect(a) for a in d.adverse))


def _effect_claim(rng: random.Random, decision: str) -> Claim:
    drug = pick(rng, _STUDIED)
    if decision == "no":
        effect = pick(rng, _absent_effects(drug.name))
        why = f"{effect} is not a recognized adverse effect of {drug.name}"
    else:
        effect = pick(rng, [a for a in drug.adverse if _adult_effect(a)])
        why = f"{effect} is a recognized adverse effect of {drug.name}"
    background = (
        f"{cap(drug.name)} is {article(drug.cls)} {drug.cls} that {drug.mechanism}. It is widely used for "
        f"{pick(rng, drug.uses)}."
    )
    return Claim("effect", drug.name, effect, decision, cap(drug.name), background, why)


def _treatment_claim(rng: random.Random, decision: str) -> Claim:
    disease = pick(rng, DISEASES)
    if decision == "no":
        treatment = pick(rng, disease.wrong_treatments)
        why = f"{treatment} is not an effective first-line treatment for {disease.name}"
    else:
        treatment = disease.treatment
        why = f"{treatment} is first-line treatment for {disease.name}"
    background = (
        f"{cap(disease.name)} typically presents with {disease.presentation}. Standard guidance "
        f"recommends {disease.treatment} as initial therapy."
    )
    return Claim("treatment", treatment, disease.name, decision, cap(disease.name), background, why)


@functools.cache
def _other_systems(name: str) -> tuple[Disease, ...]:
    disease = next(d for d in DISEASES if d.name == name)
    return tuple(
        d
        for d in DISEASES
        if d.name != name
        and d.name not in disease.related
        and name not in d.related
        and d.system != disease.system
    )


def _finding_claim(rng: random.Random, decision: str) -> Claim:
    disease = pick(rng, DISEASES)
    if decision == "no":
        other = pick(rng, _other_systems(disease.name))
        finding = other.finding
        why = f"this finding belongs to {other.name} rather than {disease.name}"
    else:
        finding = disease.finding
        why = f"this is the key diagnostic finding of {disease.name}"
    background = (
        f"{cap(disease.name)} presents with {disease.presentation}, and early recognition changes management."
    )
    return Claim("finding", finding, disease.name, decision, cap(disease.name), background, why)


# Time qualifiers that make otherwise similar questions specific (as real study titles are).
_WHEN = {
    "effect": ((" within {n} months of starting treatment", 2, 36), (" over {n} years of follow-up", 2, 15),
               (" during the first {n} weeks of use", 2, 12), (" after {n} or more years of use", 2, 10)),
    "treatment": ((" at day {n}", 3, 28), (" within {n} days of diagnosis", 1, 14),
                  (" after {n} days of treatment", 2, 21)),
    "finding": ((" in patients over {n}", 18, 80), (" within {n} hours of presentation", 2, 48),
                (" at the first of {n} clinic visits", 2, 9)),
}  # fmt: skip


def _question(rng: random.Random, claim: Claim, population: str, setting: str, window: str) -> str:
    if claim.decision == "maybe":
        extra = f" {window}"
    else:
        form, low, high = pick(rng, _WHEN[claim.kind])
        extra = form.format(n=rint(rng, low, high)) if rng.random() < 0.7 else ""
    if claim.kind == "effect":
        frames = (
            f"Is {claim.subject} use associated with {claim.outcome}{extra} among {population} {setting}?",
            f"Does treatment with {claim.subject} increase the risk of {claim.outcome}{extra} in "
            f"{population}?",
            f"Are {population} taking {claim.subject} more likely to develop {claim.outcome}{extra}?",
            f"Should clinicians monitor {population} on {claim.subject} for {claim.outcome}{extra}?",
            f"{cap(claim.subject)} and {claim.outcome}{extra}: is there a link in {population} {setting}?",
        )
    elif claim.kind == "treatment":
        frames = (
            f"Is {claim.subject} effective as initial therapy for {claim.outcome}{extra} in {population}?",
            f"Does {claim.subject} improve outcomes of {claim.outcome}{extra} among {population} {setting}?",
            f"Should {claim.subject} be the first choice for {claim.outcome}{extra} in {population}?",
            f"Treating {claim.outcome} with {claim.subject}{extra}: does it work for {population} {setting}?",
        )
    else:
        frames = (
            f"Does {claim.subject} help identify {claim.outcome}{extra} in {population} {setting}?",
            f"Is {claim.subject} a reliable marker of {claim.outcome}{extra} among {population}?",
            f"Can {claim.subject} distinguish {claim.outcome} from other diagnoses{extra} in {population}?",
        )
    return pick(rng, frames)


def _stats(rng: random.Random, decision: str) -> tuple[float, float, float, str]:
    """Odds ratio, CI and p-value text fitting the decision."""
    if decision == "yes":
        ratio = round(rng.uniform(1.6, 4.2), 2)
        low = round(ratio * rng.uniform(0.55, 0.8), 2)
        p = pick(rng, ("p < 0.001", "p = 0.002", "p = 0.004", "p = 0.01", "p < 0.01"))
    elif decision == "no":
        ratio = round(rng.uniform(0.86, 1.12), 2)
        low = round(ratio * rng.uniform(0.62, 0.85), 2)
        p = f"p = {rng.uniform(0.31, 0.92):.2f}"
    else:
        ratio = round(rng.uniform(1.18, 1.45), 2)
        low = round(rng.uniform(0.91, 0.99), 2)
        p = f"p = {rng.uniform(0.06, 0.14):.2f}"
    high = round(ratio + (ratio - low) * rng.uniform(1.1, 1.6), 2)
    return ratio, low, high, p


def _methods(rng: random.Random, claim: Claim, population: str, setting: str, n: int) -> str:
    start = rint(rng, 2003, 2014)
    end = start + rint(rng, 3, 8)
    design = pick(rng, DESIGNS[claim.kind])
    model = pick(rng, MODELS[claim.kind])
    what = {
        "effect": f"The exposure was {claim.subject} use, and the outcome was {claim.outcome}.",
        "treatment": f"Patients with {claim.outcome} received {claim.subject} or comparator management, and "
        "the "
        f"primary outcome was clinical response.",
        "finding": f"The index test was {claim.subject}, and the reference standard was an expert diagnosis "
        "of "
        f"{claim.outcome}.",
    }[claim.kind]
    adjust = pick(rng, ("comorbidity", "baseline risk", "kidney function", "smoking", "disease severity"))
    tail = (
        f" Analyses used {model} adjusted for age, sex and {adjust}."
        if claim.kind != "finding"
        else (f" Analyses used {model}.")
    )
    return (
        f"We performed {article(design)} {design} of {n} {population} {setting} between {start} and {end}. "
        f"{what}{tail}"
    )


def _results(rng: random.Random, claim: Claim, n: int, window: str) -> str:
    if claim.kind == "finding":
        return _accuracy_results(rng, claim, n, window)
    ratio, low, high, p = _stats(rng, claim.decision)
    k = rint(rng, max(8, n // 20), max(12, n // 4))
    pct = round(100 * k / n, 1)
    if claim.kind == "effect":
        measure = pick(rng, ("odds ratio", "hazard ratio", "risk ratio"))
        text = (
            f"Of the {n} participants, {k} ({pct}%) developed {claim.outcome} over a median follow-up of "
            f"{rint(rng, 6, 60)} months. The adjusted {measure} for exposed participants was {ratio} "
            f"(95% CI {low} to {high}; {p})."
        )
    else:
        text = (
            f"Of the {n} participants, {k} ({pct}%) received {claim.subject}. Compared with other "
            f"approaches, the relative likelihood of clinical response by day {rint(rng, 3, 28)} was "
            f"{ratio} (95% CI {low} to {high}; {p})."
        )
    if claim.decision == "maybe":
        text += (
            f" The estimate {window} was imprecise, and a sensitivity analysis "
            f"{pick(rng, ('weakened', 'did not confirm', 'attenuated'))} the finding."
        )
    return text


def _accuracy_results(rng: random.Random, claim: Claim, n: int, window: str) -> str:
    low_high = {"yes": (0.86, 0.95), "no": (0.48, 0.58), "maybe": (0.63, 0.72)}[claim.decision]
    auc = round(rng.uniform(*low_high), 2)
    sens = round(min(99.0, 100 * auc + rng.uniform(-6, 4)), 1)
    spec = round(min(99.0, 100 * auc + rng.uniform(-5, 5)), 1)
    k = rint(rng, max(10, n // 10), max(20, n // 3))
    text = (
        f"The outcome was confirmed in {k} of {n} participants. Sensitivity was {sens}% and specificity "
        f"{spec}%, with an area under the curve of {auc}."
    )
    if claim.decision == "maybe":
        text += f" Accuracy {window} was lower and its confidence interval was wide."
    return text


def _long_answer(rng: random.Random, claim: Claim, population: str) -> str:
    if claim.decision == "yes":
        lead = pick(rng, ("In this study,", "These data show that", "Our findings confirm that"))
        verb = {
            "effect": f"{claim.subject} use was associated with {claim.outcome}",
            "treatment": f"{claim.subject} was effective for {claim.outcome}",
            "finding": f"{claim.subject} reliably identified {claim.outcome}",
        }[claim.kind]
        return f"{lead} {verb} among {population}, consistent with the fact that {claim.why}."
    if claim.decision == "no":
        verb = {
            "effect": f"{claim.subject} use was not associated with {claim.outcome}",
            "treatment": f"{claim.subject} did not improve {claim.outcome}",
            "finding": f"{claim.subject} did not help identify {claim.outcome}",
        }[claim.kind]
        return f"{cap(verb)} among {population}, which fits with the fact that {claim.why}."
    return (
        f"The evidence was inconclusive for this subgroup of {population}. Although {claim.why}, larger "
        "studies "
        f"are needed before firm conclusions can be drawn."
    )


def _population(rng: random.Random, claim: Claim) -> str:
    """A study population that fits the claim's sex-specific subjects (vaginosis, gynecomastia...)."""
    text = f"{claim.outcome} {claim.subject}".lower()
    if sex_for(text) == "female" or any(k in text for k in ("menstrual", "vagin", "lupus", "preeclampsia")):
        return pick(rng, ("women", "women of reproductive age", "adult women", "women attending clinics"))
    if sex_for(text) == "male" or any(k in text for k in ("gynecomastia", "urethritis", "erectile")):
        return pick(rng, ("men", "adult men", "older men", "men attending clinics"))
    return pick(rng, POPULATIONS)


def _meshes(rng: random.Random, claim: Claim, population: str) -> tuple[str, ...]:
    words = population.split()
    sexes = ("Female",) if "women" in words else ("Male",) if "men" in words else ("Female", "Male")
    ages = (
        ("Aged",) if any(w in population for w in ("older", "over 65", "frail")) else ("Adult", "Middle Aged")
    )
    study = {
        "effect": ("Cohort Studies", "Risk Factors"),
        "treatment": ("Treatment Outcome",),
        "finding": ("Sensitivity and Specificity", "Diagnosis"),
    }[claim.kind]
    return ("Humans", *ages, *sexes, claim.topic, *study)


_DECISION_CUM = cumulative((0.55, 0.3, 0.15))
_CLAIM_CUM = cumulative((0.45, 0.35, 0.2))


def generate(rng: random.Random) -> YesNoItem:
    """One PubMedQA-like item (decisions roughly 55% yes, 30% no, 15% maybe, like the original)."""
    decision = weighted(rng, ("yes", "no", "maybe"), _DECISION_CUM)
    claim = weighted(rng, (_effect_claim, _treatment_claim, _finding_claim), _CLAIM_CUM)(rng, decision)
    population, setting, window = _population(rng, claim), pick(rng, SETTINGS), pick(rng, WINDOWS[claim.kind])
    n = rint(rng, 180, 9800)
    first = pick(rng, ("BACKGROUND", "OBJECTIVE", "INTRODUCTION"))
    aim = pick(rng, ("We examined whether", "This study assessed whether", "We aimed to determine whether"))
    contexts = (
        f"{claim.background} {aim} the relationship between {claim.subject} and {claim.outcome} holds "
        f"among {population}.",
        _methods(rng, claim, population, setting, n),
        _results(rng, claim, n, window),
    )
    meshes = _meshes(rng, claim, population)
    return YesNoItem(
        question=_question(rng, claim, population, setting, window),
        contexts=contexts,
        labels=(first, "METHODS", "RESULTS"),
        meshes=meshes,
        decision=decision,
        long_answer=_long_answer(rng, claim, population),
        year=rint(rng, 2005, 2023),
        template=f"yesno.{claim.kind}",
    )
