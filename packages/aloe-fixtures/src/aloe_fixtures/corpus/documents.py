"""A small medical document collection: textbook-style passages written from the fact tables.

One document per record (drug, disease, lab test, nerve, artery, cranial nerve, organism, hormone), each
a short encyclopaedia entry, so retrieval has a real-looking corpus to index with nothing to download
(``aloe demo``, the RAG tests). Every sentence is built from the fact table's fields only, so a passage
is correct exactly when the table is, and a question generated from the same table has its answer in
one known document (its ``id``).

:func:`write_documents` writes them as one JSONL file per topic (``{id, title, text}``), or as Markdown
files (``# title`` then the text) for the folder reader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aloe_core.atomic import atomic_write_text
from aloe_fixtures.corpus.facts import Artery, CranialNerve, Disease, Drug, Hormone, Lab, Nerve, Organism


def _join(items: tuple[str, ...] | list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def drug_text(d: Drug) -> str:
    parts = [
        f"{d.name.capitalize()} is a drug of the {d.cls} class, used in {d.group} medicine.",
        f"Mechanism of action: it {d.mechanism}.",
        f"Its main indications are {_join(d.uses)}.",
        f"Classic adverse effects include {_join(d.adverse)}.",
    ]
    if d.signature:
        parts.append(f"The adverse effect most characteristic of {d.name} is {d.signature}.")
    if d.contraindications:
        parts.append(f"It is contraindicated in {_join(d.contraindications)}.")
    parts.append(f"Clinical note: {d.note}.")
    return " ".join(parts)


def disease_text(d: Disease) -> str:
    who = {"female": "women", "male": "men"}.get(d.sex, "patients")
    parts = [
        f"{d.name.capitalize()} is a condition seen in {d.system}.",
        f"It typically affects {who} between {d.age[0]} and {d.age[1]} years of age.",
        f"The classic presentation is {d.presentation}.",
        f"The key diagnostic finding is {d.finding}.",
        f"First-line treatment is {d.treatment}: {d.treatment_detail}.",
        f"Options such as {_join(list(d.wrong_treatments[:3]))} are not first-line for this condition.",
    ]
    if d.clue:
        parts.append(f"A typical history is a patient who {d.clue}.")
    return " ".join(parts)


def lab_text(lab: Lab) -> str:
    low, high = f"{lab.low:.{lab.decimals}f}", f"{lab.high:.{lab.decimals}f}"
    return " ".join(
        [
            f"The reference range of {lab.name} in adults is {low} to {high} {lab.unit}.",
            f"A value below the range is called {lab.low_term}; common causes are {_join(lab.low_causes)}.",
            f"A value above the range is called {lab.high_term}; common causes are {_join(lab.high_causes)}.",
        ]
    )


def nerve_text(n: Nerve) -> str:
    return " ".join(
        [
            f"The {n.name} arises from the {n.roots} roots.",
            f"It supplies {n.supplies}; a muscle that tests it is the {n.key_muscle}.",
            f"Injury causes {n.lesion}.",
            f"A classic cause of injury is {n.cause}.",
        ]
    )


def artery_text(a: Artery) -> str:
    return f"The {a.name} supplies {a.territory}. Its occlusion causes {a.occlusion}."


def cranial_nerve_text(c: CranialNerve) -> str:
    return (
        f"Cranial nerve {c.number}, the {c.name}, {c.function}. A lesion of the {c.name} causes {c.lesion}."
    )


def organism_text(o: Organism) -> str:
    return " ".join(
        [
            f"On microscopy, {o.name} appears as {o.morphology}.",
            f"It causes {o.disease}.",
            f"A distinctive feature: {o.feature}.",
            f"Treatment is {o.treatment}.",
        ]
    )


def hormone_text(h: Hormone) -> str:
    return (
        f"{_sentence(h.name)[:-1]} is secreted by the {h.source}. It {h.action}. "
        f"Its secretion is driven by {h.regulation}."
    )


def _topics() -> list[tuple[str, tuple[Any, ...], Callable[[Any], str], Callable[[Any], str]]]:
    from aloe_fixtures.corpus.facts_clinical import DISEASES, LABS
    from aloe_fixtures.corpus.facts_drugs import DRUGS
    from aloe_fixtures.corpus.facts_science import ARTERIES, CRANIAL_NERVES, HORMONES, NERVES, ORGANISMS

    return [
        ("drugs", DRUGS, lambda d: d.name, drug_text),
        ("diseases", DISEASES, lambda d: d.name, disease_text),
        ("labs", LABS, lambda x: x.name, lab_text),
        ("nerves", NERVES, lambda x: x.name, nerve_text),
        ("arteries", ARTERIES, lambda x: x.name, artery_text),
        (
            "cranial_nerves",
            CRANIAL_NERVES,
            lambda x: f"cranial nerve {x.number} ({x.name})",
            cranial_nerve_text,
        ),
        ("organisms", ORGANISMS, lambda x: x.name, organism_text),
        ("hormones", HORMONES, lambda x: x.name, hormone_text),
    ]


def medical_documents() -> list[dict[str, str]]:
    """Every document, ``{id, title, text, topic}``; ids are ``<topic>/<slug of the record name>``."""
    documents = []
    for topic, records, name, text in _topics():
        for record in records:
            title = name(record)
            documents.append(
                {
                    "id": f"{topic}/{_slug(title)}",
                    "title": title[0].upper() + title[1:],
                    "text": text(record),
                    "topic": topic,
                }
            )
    return documents


LAYOUTS = ("jsonl", "md")


def write_documents(folder: str | Path, layout: str = "jsonl") -> list[Path]:
    """Write the collection to ``folder``: ``<topic>.jsonl`` files, or ``<topic>/<slug>.md`` files with
    ``layout="md"``; returns the files written (each atomically)."""
    folder = Path(folder)
    written = []
    by_topic: dict[str, list[dict[str, str]]] = {}
    for doc in medical_documents():
        by_topic.setdefault(doc["topic"], []).append(doc)
    for topic, docs in by_topic.items():
        if layout == "jsonl":
            path = folder / f"{topic}.jsonl"
            lines = (json.dumps({k: d[k] for k in ("id", "title", "text")}, ensure_ascii=False) for d in docs)
            atomic_write_text(path, "\n".join(lines) + "\n")
            written.append(path)
        elif layout == "md":
            for d in docs:
                path = folder / f"{d['id']}.md"
                atomic_write_text(path, f"# {d['title']}\n\n{d['text']}\n")
                written.append(path)
        else:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return written
