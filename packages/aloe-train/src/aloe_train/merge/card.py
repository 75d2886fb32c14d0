"""The facts of a merged model's card (:mod:`aloe_train.cards`): what was merged, from which exact
files, and the recipe to redo it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_core import storage
from aloe_train.cards import FACTS
from aloe_train.merge.config import MergeConfig

PRETTY = {
    "linear": "Linear",
    "task_arithmetic": "Task Arithmetic",
    "ties": "TIES",
    "dare_ties": "DARE-TIES",
    "dare_linear": "DARE (linear)",
}
REFERENCES = {
    "linear": "https://arxiv.org/abs/2203.05482",
    "task_arithmetic": "https://arxiv.org/abs/2212.04089",
    "ties": "https://arxiv.org/abs/2306.01708",
    "dare_ties": "https://arxiv.org/abs/2311.03099",
    "dare_linear": "https://arxiv.org/abs/2311.03099",
}


@dataclass(frozen=True)
class FileRecord:
    """A weights file and its digest (inputs: per model; outputs: the shards written)."""

    path: Path
    size: int
    sha256: str


def merge_card(
    cfg: MergeConfig,
    *,
    title: str,
    config_text: str,
    inputs: dict[str, list[FileRecord]],
    outputs: list[FileRecord],
    tensors: int,
    parameters: int,
    out_dtype: str,
) -> dict[str, Any]:
    """Card facts. ``inputs`` maps each input folder (absolute, in input order) to its files."""
    spec = cfg.spec
    base = model_name(cfg.base_model) if cfg.base_model else None
    settings = [
        f"- method: `{cfg.merge_method}` ({PRETTY[cfg.merge_method]}, {REFERENCES[cfg.merge_method]})",
        f"- base model: `{base}`" if base else "- base model: none (linear merge of the listed models)",
        f"- compute dtype: `{cfg.dtype or 'promoted from the inputs'}`, saved dtype: `{out_dtype}`",
        f"- tensors: {tensors}, parameters: {parameters:,}",
    ]
    if spec.sparsification == "random":
        settings.append(
            f"- DARE mask seed: {cfg.seed} (same weights as `mergekit-yaml --random-seed {cfg.seed}`)"
        )
    rows = ["| role | model folder | file | bytes | sha256 |", "|---|---|---|---|---|"]
    for folder, files in inputs.items():
        role = "base" if base == folder else "model"
        for record in files:
            rows.append(f"| {role} | `{folder}` | {record.path.name} | {record.size} | `{record.sha256}` |")
    out_rows = ["| file | bytes | sha256 |", "|---|---|---|"]
    out_rows += [f"| {r.path.name} | {r.size} | `{r.sha256}` |" for r in outputs]
    sections = {
        "Input models": "\n".join(rows),
        "Recipe": f"Also saved as `mergekit_config.yml`.\n\n```yaml\n{config_text.rstrip()}\n```",
        "Output weights": "\n".join(out_rows),
        "Reproduce": "```bash\naloe train merge mergekit_config.yml --output-dir OUT\n```\n\n"
        "Relative model paths in the recipe are resolved from the directory the command runs in.",
    }
    datasets = sorted({d for folder in inputs for d in _input_datasets(folder)})
    return {
        "kind": "merge",
        "title": title,
        "base_model": base or model_name(cfg.models[0].model),
        "tags": [cfg.merge_method],
        "release": None,
        "datasets": datasets,
        "data": {},
        "recipe": "Merged with aloe (`aloe train merge`), tensor by tensor over safetensors, with mergekit "
        "0.1.5's arithmetic.\n\n" + "\n".join(settings),
        "hyperparameters": _hyperparameters(cfg),
        "config": None,
        "results": None,
        "sections": sections,
        "evaluations": [],
    }


def model_name(path: str | Path) -> str:
    """How the card (and the output check) names a model folder: a URI as written, a local path absolute
    (relative recipe paths depend on where the command ran)."""
    return str(path).rstrip("/") if storage.is_uri(path) else str(Path(path).absolute())


def _input_datasets(folder: str) -> list[str]:
    """The data releases an input model was trained on, from its own card facts (if aloe made it; read
    where the model is, a URI included)."""
    facts = storage.join(folder, FACTS)
    return json.loads(storage.read_text(facts)).get("datasets", []) if storage.is_file(facts) else []


def _hyperparameters(cfg: MergeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"method": cfg.merge_method, "dtype": cfg.dtype, "seed": cfg.seed}
    out |= {f"global {k}": v for k, v in (cfg.parameters or {}).items()}
    for entry in cfg.models:
        for key, value in (entry.parameters or {}).items():
            out[f"{Path(entry.model).name} {key}"] = value
    return {k: v for k, v in out.items() if v is not None}
