"""Model cards: the ``README.md`` of every exported SFT, DPO or merged model folder.

The card is made from *facts* (a JSON-able dict: base model, training data and its release, recipe,
hyperparameters, config, training results, kind-specific sections) that the exporter gathers, plus
evaluation results from ``aloe eval run`` when there are some. The facts are saved beside the card as
``aloe_card.json``, so the card can be written again later from the folder alone, e.g. once the model
has been evaluated::

    write_model_card(Path("runs/sft-tiny/model"), kind="sft", eval_results=[Path("runs/eval/results.json")])

Front matter: license, base_model, library_name, pipeline_tag, tags and datasets (the data release's
name, when the training data was a release). Sections: model description, training data, training
procedure with a hyperparameter table, training results, evaluation, intended and out-of-scope use,
bias, risks and limitations (the healthcare risks Aloe's own model cards name), how to use, citation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, atomic_write_text
from aloe_core.errors import InputError

CardKind = Literal["sft", "dpo", "merge"]
CARD = "README.md"
FACTS = "aloe_card.json"
KIND_NAMES = {"sft": "supervised fine-tuning (SFT)", "dpo": "preference optimisation (DPO)", "merge": "merge"}

INTENDED_USE = (
    "Research on medical language models: benchmarking, studying alignment and safety, and as a base for "
    "further fine-tuning by teams able to evaluate it. Answers to health questions are drafts for "
    "people qualified to judge them."
)
OUT_OF_SCOPE = (
    "Clinical practice, diagnosis, triage, prescribing or any other direct or indirect healthcare advice to "
    "patients; decisions about people without professional review; use by minors without supervision; "
    "activities harmful to people (spam, fraud, impersonation of healthcare professionals)."
)
RISKS = (
    "Language models trained on medical text make mistakes with confidence, reproduce the biases of their "
    "data (exam-style English sources over-represent some countries, populations and guidelines) and can "
    "produce toxic or unsafe content under adversarial prompts; safety alignment, where it was done, "
    "lowers but does not remove this. Three risks specific to healthcare models, as the Aloe model cards "
    "name them:\n\n"
    "- **Impersonation of healthcare professionals**: fluent clinical language makes fraud by fake "
    "practitioners more convincing and cheaper. Mitigations: public awareness that online medical "
    "advice needs a registered professional, and disclaimers on generated content.\n"
    "- **Medical decisions without professional supervision**: tailored, confident answers invite "
    "self-diagnosis and self-medication, the more so when the model agrees with the user "
    "(sycophancy). Mitigations: warnings on outputs, and keeping a clinician in the loop.\n"
    "- **Access to information on dangerous substances or procedures**: a model gathers in one place "
    "what is scattered elsewhere; alignment reduces it but jailbreaks still get through (see the "
    "safety evaluation, `aloe eval safety`)."
)
CITATION = """```bibtex
@misc{gururajan2024aloe,
  title = {Aloe: A Family of Fine-tuned Open Healthcare LLMs},
  author = {Gururajan, Ashwin Kumar and others},
  year = {2024},
  eprint = {2405.01886},
  archivePrefix = {arXiv}
}
```"""


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that decide a training run's result, from a recipe config's JSON dump."""
    optim, loop, scaling = config.get("optim", {}), config.get("train", {}), config.get("scaling", {})
    workers = scaling.get("num_workers", 1)
    out = {
        "learning rate": optim.get("lr"),
        "schedule": f"linear warmup ({optim.get('warmup_ratio')} of steps), cosine to "
        f"{optim.get('min_lr_ratio')} x lr",
        "optimizer": f"AdamW, betas {tuple(optim.get('betas', ()))}, eps {optim.get('eps')}",
        "weight decay": optim.get("weight_decay"),
        "max grad norm": optim.get("max_grad_norm"),
        "epochs": loop.get("epochs"),
        "max steps": loop.get("max_steps"),
        "micro batch size (per worker)": loop.get("micro_batch_size"),
        "gradient accumulation steps": loop.get("grad_accum_steps"),
        "workers": workers,
        "global batch (rows)": loop.get("micro_batch_size", 1) * loop.get("grad_accum_steps", 1) * workers,
        "max length (tokens)": config.get("data", {}).get("max_length"),
        "mixed precision": scaling.get("mixed_precision"),
        "seed": loop.get("seed"),
    }
    loss = config.get("loss")
    if loss:
        out |= {f"loss {key}": value for key, value in loss.items()}
    return {key: value for key, value in out.items() if value is not None}


def _release(provenance: dict[str, Any]) -> dict[str, Any] | None:
    if provenance.get("release"):
        return {k: provenance.get(k) for k in ("release", "version", "license", "path")}
    return None


def training_facts(
    kind: CardKind, *, title: str, base_model: str, config: dict[str, Any], data: dict[str, Any],
    recipe: str, results: str,
) -> dict[str, Any]:  # fmt: skip
    """The facts of an SFT or DPO export: ``data`` is the recipe's data stats (``source`` = the shard
    provenance from :func:`aloe_core.shards.resolve_inputs`, ``rows`` ...)."""
    source = data.get("source", {})
    release = _release(source)
    return {
        "kind": kind,
        "title": title,
        "base_model": base_model,
        "release": release,
        "datasets": [release["release"]] if release else [],
        "data": {"source": source, "rows": data.get("rows")},
        "recipe": recipe,
        "hyperparameters": hyperparameters(config),
        "config": config,
        "results": results,
        "sections": {},
        "evaluations": [],
    }


def _front_matter(facts: dict[str, Any], license_id: str) -> str:
    front = {
        "license": license_id,
        "base_model": facts["base_model"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "language": ["en"],
        "tags": ["aloe", "medical", "healthcare", facts["kind"], *facts.get("tags", [])],
        "datasets": facts.get("datasets") or [],
    }
    if not front["datasets"]:
        del front["datasets"]
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def evaluation_table(evaluations: Sequence[dict[str, Any]]) -> str:
    """Accuracy with its Wilson 95% interval and n, one column per results.json (strategy), one row per
    benchmark, MMLU subject and aggregate (``aloe_infer.eval.results`` format)."""
    names: list[str] = []
    for result in evaluations:
        for name, score in result["benchmarks"].items():
            names += [
                n for n in [name, *(f"{name}/{s}" for s in score.get("subjects", {}))] if n not in names
            ]
    aggregates = list(dict.fromkeys(a for r in evaluations for a in r.get("aggregates", {})))

    def cell(result: dict[str, Any], name: str) -> str:
        bench, _, subject = name.partition("/")
        score = result["benchmarks"].get(bench)
        score = score.get("subjects", {}).get(subject) if score and subject else score
        if not score:
            return "-"
        low, high = score["ci95"]
        return f"{score['accuracy']:.3f} [{low:.3f}, {high:.3f}] (n={score['n']})"

    rows = [[f"`{n}`", *(cell(r, n) for r in evaluations)] for n in names]
    rows += [[f"**{a}**", *(f"{r['aggregates'][a]['accuracy']:.3f}" if a in r.get("aggregates", {}) else "-"
                           for r in evaluations)] for a in aggregates]  # fmt: skip
    header = ["benchmark", *(f"{r['strategy']} ({r.get('split', 'test')})" for r in evaluations)]
    notes = "; ".join(
        f"{r['strategy']}: {r.get('engine')} engine, chat template "
        f"{'applied' if r.get('chat_template') else 'not applied'}, {r.get('questions')} questions"
        for r in evaluations
    )
    return (
        f"Accuracy [Wilson 95% CI] (n), from `aloe eval run` ({notes}).\n\n{_table(header, rows)}\n\n"
        "MultiMedQA is size-weighted over MedQA, MedMCQA, PubMedQA and the MMLU medical subjects; "
        "medical_mmlu is the mean of those subjects."
    )


def _data_section(facts: dict[str, Any]) -> str:
    release = facts.get("release")
    data = facts.get("data") or {}
    lines = []
    if release:
        lines.append(f"Data release **{release['release']}** version **{release['version']}** "
                     f"(license `{release.get('license')}`, `{release.get('path')}`).")  # fmt: skip
    if data.get("source"):
        lines.append("Source: " + ", ".join(f"{k}: `{v}`" for k, v in data["source"].items()) + ".")
    if data.get("rows"):
        lines.append(f"Rows: `{json.dumps(data['rows'])}`.")
    return "\n\n".join(lines) or "See the recipe below."


def render_card(facts: dict[str, Any], license_id: str) -> str:
    """The README.md text of ``facts`` (see the module docstring)."""
    hyper = facts.get("hyperparameters") or {}
    procedure = facts.get("recipe", "")
    if hyper:
        procedure += "\n\n" + _table(["hyperparameter", "value"], [[k, f"`{v}`"] for k, v in hyper.items()])
    if facts.get("config"):
        procedure += ("\n\n<details><summary>Full config</summary>\n\n```yaml\n"
                      + yaml.safe_dump(facts["config"], sort_keys=False) + "```\n\n</details>")  # fmt: skip
    evaluations = facts.get("evaluations") or []
    evaluation = evaluation_table(evaluations) if evaluations else (
        "Not evaluated yet. Run `aloe eval run --model THIS_FOLDER ...`, then "
        "`aloe train card THIS_FOLDER --kind KIND --eval RUN/results.json` to add the table here."
    )  # fmt: skip
    sections = {
        "Model description": f"A {KIND_NAMES[facts['kind']]} of `{facts['base_model']}` made with aloe, "
        "the Aloe recipe for open healthcare LLMs as distributed software.",
        "Training data": _data_section(facts),
        "Training procedure": procedure.strip(),
        **({"Training results": facts["results"]} if facts.get("results") else {}),
        **facts.get("sections", {}),
        "Evaluation": evaluation,
        "Intended use": INTENDED_USE,
        "Out-of-scope use": OUT_OF_SCOPE,
        "Bias, risks and limitations": RISKS,
        "How to use": "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(PATH)\nmodel = AutoModelForCausalLM.from_pretrained(PATH)\n```",
        "Citation": CITATION,
    }
    body = [f"# {facts['title']}", ""]
    for heading, text in sections.items():
        body += [f"## {heading}", "", text.rstrip(), ""]
    return _front_matter(facts, license_id) + "\n" + "\n".join(body)


def _base_license(base_model: str) -> str:
    """The license in the base model's own card front matter, else ``unknown``."""
    card = storage.join(base_model, CARD)  # a local folder or a URI
    if storage.is_file(card):
        text = storage.read_text(card)
        if text.startswith("---"):
            front = yaml.safe_load(text.split("---", 2)[1]) or {}
            if isinstance(front, dict) and front.get("license"):
                return str(front["license"])
    return "unknown"


def rewrite_model_card(
    model: str | Path,
    *,
    kind: CardKind,
    eval_results: Sequence[str | Path] | None = None,
    license: str | None = None,
) -> str:
    """``aloe train card``: write the card of an exported model folder (local or a URI) again from its
    ``aloe_card.json``; returns where the card is.

    On a URI only ``aloe_card.json`` is fetched (the card needs nothing else, a model's weights are
    GBs), the card is made in a scratch folder, and the facts then ``README.md`` are put back, one
    whole-object PUT each: a reader sees the old card or the new one.

    Raises:
        InputError: ``model`` has no ``aloe_card.json``.
    """
    import tempfile

    if not storage.is_file(storage.join(model, FACTS)):
        raise InputError(f"{storage.location(model)}: no {FACTS}; not a model folder exported by aloe")
    if not storage.is_uri(model):
        return str(write_model_card(Path(model), kind=kind, eval_results=eval_results, license=license))
    with tempfile.TemporaryDirectory(prefix="aloe-card-") as scratch:
        storage.download_file(storage.join(model, FACTS), Path(scratch, FACTS))
        card = write_model_card(Path(scratch), kind=kind, eval_results=eval_results, license=license)
        storage.upload_file(Path(scratch, FACTS), storage.join(model, FACTS))
        storage.upload_file(card, storage.join(model, CARD))
    return storage.join(model, CARD)


def write_model_card(
    model_dir: Path,
    *,
    kind: CardKind,
    facts: dict[str, Any] | None = None,
    eval_results: Sequence[str | Path | dict[str, Any]] | str | Path | None = None,
    license: str | None = None,
) -> Path:
    """Write ``model_dir/README.md`` (and the facts, ``aloe_card.json``); return the card's path.

    Args:
        model_dir: the exported model folder (or its staging folder, before it is published).
        kind: ``sft``, ``dpo`` or ``merge``.
        facts: what the exporter knows (:func:`training_facts`, or the merge's); None: the folder's
            ``aloe_card.json`` from an earlier call.
        eval_results: ``results.json`` files (or their parsed content) of ``aloe eval run``; they
            replace the evaluations the facts held.
        license: the card's license (default: the base model card's, else ``unknown``).

    Raises:
        FileNotFoundError: no ``facts`` and no ``aloe_card.json`` in ``model_dir``.
    """
    model_dir = Path(model_dir)
    if facts is None:
        facts = json.loads((model_dir / FACTS).read_text(encoding="utf-8"))
    facts = {**facts, "kind": kind}
    if eval_results is not None:
        items = [eval_results] if isinstance(eval_results, (str, Path, dict)) else list(eval_results)
        facts["evaluations"] = [
            r if isinstance(r, dict) else json.loads(storage.read_text(r))
            for r in items  # a URI too
        ]
        for result in facts["evaluations"]:
            result.pop("config", None)  # the card keeps the scores; the eval run keeps its config
    facts["license"] = license or facts.get("license") or _base_license(facts["base_model"])
    atomic_write_json(model_dir / FACTS, facts)
    atomic_write_text(model_dir / CARD, render_card(facts, facts["license"]))
    return model_dir / CARD
