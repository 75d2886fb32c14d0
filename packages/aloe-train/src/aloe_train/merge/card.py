"""The output folder's README.md: what was merged, from which exact files, and the recipe to redo it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aloe_train.checkpoint import model_card
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
) -> str:
    """README.md text. ``inputs`` maps each input folder (absolute, in input order) to its files."""
    spec = cfg.spec
    base = str(Path(cfg.base_model).absolute()) if cfg.base_model else None
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
        "Merge": "Merged with aloe (`aloe train merge`), tensor by tensor over safetensors, with mergekit "
        "0.1.5's arithmetic.\n\n" + "\n".join(settings),
        "Input models": "\n".join(rows),
        "Recipe": f"Also saved as `mergekit_config.yml`.\n\n```yaml\n{config_text.rstrip()}\n```",
        "Output weights": "\n".join(out_rows),
        "Reproduce": "```bash\naloe train merge mergekit_config.yml --output-dir OUT\n```\n\n"
        "Relative model paths in the recipe are resolved from the directory the command runs in.",
    }
    return model_card(
        title=title,
        base_model=base or str(Path(cfg.models[0].model).absolute()),
        tags=["merge", "aloe", cfg.merge_method],
        sections=sections,
    )
