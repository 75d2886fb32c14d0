"""The dataset card, ``README.md``: Hugging Face YAML front matter, then the sections users look for.

Front matter: license (the resulting one; per source in the body), language, task_categories,
size_categories, pretty_name, source_datasets, tags and ``configs`` with ``data_files`` per split,
which is what ``datasets.load_dataset(DIR)`` and the Hub read. The texts about uses, personal
information, bias and risks are also the Responsible-AI fields of ``croissant.json`` (:func:`rai_texts`).
"""

from __future__ import annotations

from typing import Any

import yaml

from aloe_data.release.shards import split_glob

FRONT = "---"


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count."""
    for limit, label in (
        (10**3, "n<1K"),
        (10**4, "1K<n<10K"),
        (10**5, "10K<n<100K"),
        (10**6, "100K<n<1M"),
        (10**7, "1M<n<10M"),
        (10**8, "10M<n<100M"),
        (10**9, "100M<n<1B"),
    ):
        if rows < limit:
            return label
    return "n>1B"


def front_matter(facts: dict[str, Any]) -> dict[str, Any]:
    """The YAML header as a mapping (also read back by ``verify-release``)."""
    config = facts["config"]
    return {
        "pretty_name": config.pretty_name or facts["name"],
        "license": facts["license"],
        "language": list(config.language),
        "task_categories": list(config.task_categories),
        "size_categories": [size_category(facts["rows"])],
        "source_datasets": sorted(facts["sources"]),
        "tags": list(config.tags),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": split_glob(split)} for split in facts["splits"]],
            }
        ],
    }


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """The YAML mapping between the leading ``---`` lines of a card, or None when there is none."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != FRONT:
        return None
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == FRONT)
    except StopIteration:
        return None
    data = yaml.safe_load("\n".join(lines[1:end]))
    return data if isinstance(data, dict) else None


def rai_texts(facts: dict[str, Any]) -> dict[str, str]:
    """Uses, personal information, bias and limitations: the card's sections and Croissant's RAI fields."""
    pii = {k: v for k, v in facts["counters"].items() if k.startswith("pii")}
    masked = ", ".join(f"{k}: {v}" for k, v in sorted(pii.items())) or "no masking counted"
    return {
        "uses": "Training and evaluating language models for medical question answering and "
        "health-related conversation (supervised fine-tuning, preference tuning, held-out validation), "
        "and research on medical data curation.",
        "out_of_scope": "Clinical decision-making, diagnosis, triage or treatment advice to patients; any "
        "use as a source of medical truth without review by qualified professionals; re-identifying "
        "people; generating content that impersonates healthcare professionals.",
        "personal": "Rows come from public question-answering datasets and synthetic or "
        "model-written text, not from patient records. The pipeline's clean stage masks e-mail "
        f"addresses, phone numbers and URLs ({masked}). Clinical vignettes describe ages, sexes and "
        "conditions of fictional or de-identified patients; masking is pattern-based and cannot "
        "guarantee that no personal or sensitive information remains. Report any found to the curators.",
        "biases": "The mix of sources decides what the data covers: mostly English, exam-style multiple "
        "choice (MedQA, MedMCQA, PubMedQA layouts) over-represents the medicine of the exams' countries "
        "(United States, India) and their guidelines; conversational sources reflect who wrote them. "
        "Demographic groups, rare diseases and non-Western practice are under-represented. DEITA-style "
        "score selection, where used, favours long and complex answers. See the per-source statistics.",
        "limitations": "Answers can be outdated, wrong or unsafe: exam keys contain errors, guidelines "
        "change, and synthetic chain-of-thought answers are only checked to end in the reference "
        "answer, not for the soundness of every step. Deduplication and decontamination are approximate "
        "(MinHash near-duplicates; 13-gram overlap with the listed benchmarks only), so benchmark "
        "scores of models trained on it may still be inflated by leakage from unlisted test sets. A "
        "model trained on this data is not a medical device and must not give care without oversight.",
        "collection": "Gathered from the sources listed in the card, read by aloe's ingest stage from "
        "their original layouts.",
        "preprocessing": "aloe data pipeline: " + " -> ".join(f["stage"] for f in facts["funnel"]),
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _sources(facts: dict[str, Any]) -> str:
    stats = facts["stats"]["by_source_task"]
    rows = []
    for source, license_id in sorted(facts["sources"].items()):
        mine = [r for r in stats if r["source"] == source]
        per = {s: sum(r["rows"] for r in mine if r["split"] == s) for s in facts["splits"]}
        tasks = ", ".join(sorted({r["task"] for r in mine}))
        rows.append([f"`{source}`", f"`{license_id}`", tasks, *per.values(), sum(r["tokens"] for r in mine)])
    header = ["source", "license", "tasks", *[f"{s} rows" for s in facts["splits"]], "tokens"]
    return (
        f"{_table(header, rows)}\n\nResulting license: **`{facts['license']}`** (one license for every "
        "source: that one; any unknown: `unknown`; otherwise the most restrictive, with non-commercial "
        "and share-alike terms carrying over). This is a convenience, not legal advice: each source's "
        "own terms apply to its rows."
    )


def _structure(facts: dict[str, Any]) -> str:
    described = {
        "id": "stable content-derived id (same input, same id)",
        "source": "source name (see Sources)",
        "task": "task label: mcqa, mcqa_context, chat, open_qa, ...",
        "messages": "the conversation: list of {role, content}; the last turn is the assistant's answer",
        "mcqa": "for multiple-choice rows: {question, options [{letter, text}], answer, context, "
        "explanation}; null otherwise",
        "prompt": "the conversation before the answer: list of {role, content}",
        "chosen": "the preferred assistant answer",
        "rejected": "the dispreferred assistant answer",
        "meta": "JSON object as text: provenance (file, row, format), scores, template id, CoT attempts",
    }
    fields = _table(
        ["field", "type", "meaning"],
        [[f"`{f.name}`", f"`{f.type}`", described.get(f.name, "")] for f in facts["schema"]],
    )
    splits = _table(
        ["split", "rows", "tokens", "files"],
        [
            [
                s,
                facts["stats"]["splits"].get(s, {}).get("rows", 0),
                facts["stats"]["splits"].get(s, {}).get("tokens", 0),
                len(files),
            ]
            for s, files in facts["splits"].items()
        ],
    )
    return (
        f"Record kind `{facts['kind']}` (`aloe_core.schemas`), Parquet (zstd) under `data/`.\n\n{fields}\n\n"
        f"{splits}\n\nThe validation split holds {facts['config'].validation_fraction:g} of every "
        f"(source, task) stratum, rounded half up, with at least one train row per stratum; rows are "
        f"ordered by a hash of (seed {facts['config'].seed}, id), so the split is the same every time.\n\n"
        "```python\nfrom datasets import load_dataset\n"
        'ds = load_dataset("PATH_OR_REPO")  # train, validation\n'
        'import polars as pl\ntrain = pl.read_parquet("PATH/data/train-*.parquet")\n```'
    )


def _curation(facts: dict[str, Any]) -> str:
    rows = []
    for f in facts["funnel"]:
        dropped = ", ".join(f"{k}: {v}" for k, v in f["dropped"].items()) or "-"
        counters = ", ".join(f"{k}: {v}" for k, v in f["counters"].items()) or "-"
        rows.append([f"`{f['stage']}`", f["rows_in"], f["rows_out"], dropped, counters])
    funnel = _table(["stage", "rows in", "rows out", "dropped (reason: rows)", "counters"], rows)
    return (
        "Curated with the aloe data pipeline (ingest, clean, exact and MinHash deduplication, "
        "decontamination against benchmark test sets, DEITA scoring and diversity selection, prompt "
        "templates, verified chain-of-thought: whichever the run configured). The funnel of the run "
        f"this release was made from (`{facts['run']['path']}`, last stage `{facts['run']['stage']}`):\n\n"
        f"{funnel}\n\n![rows per stage](stats/funnel.png)\n\nEvery stage's configuration is in "
        "`provenance/pipeline_config.yaml`; the run's manifest, with the sha256 of every shard it wrote, in "
        "`provenance/run_manifest.json`."
    )


def _statistics(facts: dict[str, Any]) -> str:
    stats = facts["stats"]
    table = _table(
        ["split", "source", "task", "rows", "tokens"],
        [[r["split"], r["source"], r["task"], r["rows"], r["tokens"]] for r in stats["by_source_task"]],
    )
    scores = (
        "![score distributions](stats/scores.png)"
        if stats["score_histograms"]
        else "No scores: the run had no `deita_score` stage."
    )
    return (
        f"Tokens are {stats['token_unit']} of all message texts (no chat template). Numbers and "
        f"histograms are in `stats/stats.json`.\n\n{table}\n\n![text length per source](stats/lengths.png)"
        f"\n\n{scores}"
    )


def _provenance(facts: dict[str, Any]) -> str:
    code = facts["code_version"]
    commit = (
        f", commit `{code['commit']}`" + (" (uncommitted changes)" if code.get("dirty") else "")
        if code.get("commit")
        else ""
    )
    return (
        f"Made by `aloe data release` (aloe-data {code['aloe_data']}{commit}) on {facts['date']} from "
        f"`{facts['run']['path']}` (stage `{facts['run']['stage']}`, key `{facts['run']['stage_key']}`). "
        "`release.json` lists the sha256 and size of every file of this folder; check them, the card and "
        "the Croissant metadata with:\n\n```bash\naloe data verify-release PATH\n```\n\n"
        "`croissant.json` describes the files and records in Croissant 1.1 (`mlcroissant.Dataset`)."
    )


def citation(facts: dict[str, Any]) -> str:
    """BibTeX for this release (the card also cites the Aloe recipe it follows)."""
    key = facts["name"].replace("-", "_").replace(".", "_") + "_" + facts["version"].replace(".", "_")
    authors = " and ".join(facts["config"].authors) or "aloe contributors"
    url = f",\n  url = {{{facts['config'].homepage}}}" if facts["config"].homepage else ""
    return (
        f"@misc{{{key},\n  title = {{{facts['config'].pretty_name or facts['name']} (version "
        f"{facts['version']})}},\n  author = {{{authors}}},\n  year = {{{facts['date'][:4]}}},\n  note = "
        f"{{Dataset release made with aloe}}{url}\n}}"
    )


ALOE_CITATION = """@misc{gururajan2024aloe,
  title = {Aloe: A Family of Fine-tuned Open Healthcare LLMs},
  author = {Gururajan, Ashwin Kumar and others},
  year = {2024},
  eprint = {2405.01886},
  archivePrefix = {arXiv}
}"""


def dataset_card(facts: dict[str, Any]) -> str:
    """The whole README.md."""
    rai = rai_texts(facts)
    stats = facts["stats"]["splits"]
    summary = facts["config"].description or (
        f"A dataset of {facts['kind']} records for medical language models, curated with the aloe data "
        "pipeline following the Aloe recipe."
    )
    split_text = ", ".join(f"{s}: {stats.get(s, {}).get('rows', 0)} rows" for s in facts["splits"])
    sections = {
        "Dataset description": f"{summary}\n\n- release: `{facts['name']}` version `{facts['version']}`\n"
        f"- splits: {split_text}\n- sources: {len(facts['sources'])}; license: `{facts['license']}`",
        "Sources": _sources(facts),
        "Uses": f"### Direct use\n\n{rai['uses']}\n\n### Out-of-scope use\n\n{rai['out_of_scope']}",
        "Dataset structure": _structure(facts),
        "Curation": _curation(facts),
        "Statistics": _statistics(facts),
        "Personal and sensitive information": rai["personal"],
        "Bias": rai["biases"],
        "Risks and limitations": rai["limitations"]
        + "\n\nHealthcare-specific risks of models trained on such data, as the Aloe model cards name them: "
        "impersonating healthcare professionals; medical decisions taken without professional "
        "supervision (self-diagnosis, self-medication, made worse by sycophantic answers); and easier "
        "access to information on dangerous substances or procedures.",
        "Provenance": _provenance(facts),
        "Citation": f"```bibtex\n{citation(facts)}\n```\n\nThe recipe:\n\n```bibtex\n{ALOE_CITATION}\n```",
    }
    head = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True)
    body = [f"# {facts['config'].pretty_name or facts['name']}", ""]
    for heading, text in sections.items():
        body += [f"## {heading}", "", text.rstrip(), ""]
    return f"{FRONT}\n{head}{FRONT}\n\n" + "\n".join(body)
