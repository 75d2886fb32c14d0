"""The fact table the synthetic corpus is generated from: record types and lookups.

Every generated question, answer and distractor is built from these records, so correctness of the corpus
is correctness of this table. The data itself lives in three modules (``facts_drugs``, ``facts_clinical``,
``facts_science``), written for this project from standard textbook knowledge; this module only defines
the record types (generators import the tables from the data modules).

Conventions a generator relies on:

* text fields are lower-case phrases that read correctly mid-sentence (``"dry cough"``, ``"inhibits
  HMG-CoA reductase ..."``); generators capitalise where needed;
* adverse effects and contraindications use one canonical wording across drugs (``"hyperkalemia"``,
  ``"QT prolongation"``), so "does drug X list effect Y" is a string comparison when choosing distractors;
* ``signature`` (drugs) is an effect distinctive enough that a question "which drug classically causes
  it" has one best answer among drugs that do not list it;
* no field contains digit runs that look like phone numbers, '@', 'http' or 'www.' (the corpus plants
  those as defects and clean rows must not contain them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    name: str
    cls: str  # pharmacological class, e.g. "ACE inhibitor"
    group: str  # broad area used to pick plausible distractors, e.g. "cardiovascular"
    mechanism: str  # verb phrase: "inhibits ..."
    uses: tuple[str, ...]
    adverse: tuple[str, ...]
    contraindications: tuple[str, ...]
    signature: str | None  # a distinctive adverse effect (must also be in ``adverse``)
    note: str  # one teaching point: monitoring, antidote, interaction


@dataclass(frozen=True)
class Disease:
    name: str
    system: str
    presentation: str  # noun phrase listing the classic features
    finding: str  # the key diagnostic finding
    treatment: str  # first-line treatment, short enough to be an answer option
    treatment_detail: str  # one sentence on how or why
    wrong_treatments: tuple[str, ...]  # plausible options that are not first-line here
    age: tuple[int, int]  # plausible age range for a vignette
    sex: str = "any"  # "any", "female" or "male"
    related: tuple[str, ...] = ()  # diseases too close to serve as distractors
    onset: tuple[str, int, int] | None = ("days", 2, 10)  # unit and range of a plausible symptom duration
    clue: str = ""  # a context sentence without subject: "has smoked for decades"
    brought: bool = False  # arrives brought by others (reduced consciousness, young children)


@dataclass(frozen=True)
class Lab:
    name: str  # "serum sodium"
    short: str  # "sodium"
    low: float
    high: float
    unit: str
    decimals: int
    low_term: str  # "hyponatremia"
    high_term: str
    low_causes: tuple[str, ...]
    high_causes: tuple[str, ...]


@dataclass(frozen=True)
class Nerve:
    name: str
    roots: str
    supplies: str  # muscles it supplies (noun phrase)
    key_muscle: str  # one muscle, usable as a short answer option
    lesion: str  # the classic deficit of an injury
    cause: str  # a classic cause of injury


@dataclass(frozen=True)
class Artery:
    name: str
    territory: str
    occlusion: str  # consequence of occlusion or injury


@dataclass(frozen=True)
class CranialNerve:
    number: str  # Roman numeral
    name: str
    function: str
    lesion: str


@dataclass(frozen=True)
class Organism:
    name: str
    morphology: str  # gram stain and shape
    disease: str
    feature: str  # distinctive laboratory or virulence feature
    treatment: str


@dataclass(frozen=True)
class Hormone:
    name: str
    source: str
    action: str
    regulation: str


def fact_count() -> int:
    """Number of individual facts (one per attribute of each record), for documentation and tests."""
    from aloe_fixtures.corpus.facts_clinical import DISEASES, LABS
    from aloe_fixtures.corpus.facts_drugs import DRUGS
    from aloe_fixtures.corpus.facts_science import ARTERIES, CRANIAL_NERVES, HORMONES, NERVES, ORGANISMS

    per_drug = sum(4 + len(d.uses) + len(d.adverse) + len(d.contraindications) for d in DRUGS)
    per_disease = 3 * len(DISEASES)
    return (
        per_drug
        + per_disease
        + 3 * len(LABS)
        + 3 * len(NERVES)
        + 2 * len(ARTERIES)
        + 2 * len(CRANIAL_NERVES)
        + 3 * len(ORGANISMS)
        + 3 * len(HORMONES)
    )
