"""Where `aloe demo` puts everything, and how big it makes it.

One folder per recipe step under ``--out``, so a user can open any artifact by its step's name::

    OUT/
      index.html                the summary page (funnel, loss curves, accuracy, ASR; links to everything)
      demo.json                 size, steps, seconds and artifacts of each step
      configs/NN-step.yaml      the config each step ran with (its `aloe` command in the header)
      models/base/              the tiny Llama every model starts from
      corpus/                   the embedded sample corpus (aloe data sample)
      documents/                the RAG corpus (aloe data documents)
      benchmarks/               the embedded benchmark, split into val (Medprompt's pool) and test
      data/sft/, data/preference/   data pipeline runs (manifest, stage shards, report.html)
      release/aloe-demo-sft-1.0.0/  the dataset release (card, Parquet, checksums, Croissant)
      train/sft/, train/dpo/{general,safety}/, merge/   training runs and exported models (with cards)
      safety/{before,pairs,after,compare}/   red-teaming before and after the safety stage
      rag/index/                the retrieval index
      eval/{sft,dpo,merged}/    benchmark runs (results.json, predictions, comparison.md)
      .demo/STEP.json           which steps finished (a rerun skips them)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

RELEASE_NAME = "aloe-demo-sft"
RELEASE_VERSION = "1.0.0"
BENCHMARK = "aloebench"


@dataclass(frozen=True)
class DemoSize:
    """How much the demo does. ``quick`` (what CI runs) trims training, red-teaming and evaluation; the
    default is the full demo the README times."""

    rows: int = 2000
    quick: bool = False

    @property
    def safety_requests_per_topic(self) -> int:
        return 1 if self.quick else 2

    @property
    def cot_max_tokens(self) -> int:
        return 48 if self.quick else 96

    @property
    def epochs(self) -> int:
        return 1 if self.quick else 2

    @property
    def medprompt_ensemble(self) -> int:
        return 3 if self.quick else 5

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class DemoLayout:
    """Every path the demo writes, absolute, so the configs it writes run from any folder."""

    root: Path

    @classmethod
    def at(cls, out: str | Path) -> DemoLayout:
        return cls(Path(out).expanduser().absolute())

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @property
    def state(self) -> Path:
        return self.root / ".demo"

    @property
    def base_model(self) -> Path:
        return self.root / "models" / "base"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def documents(self) -> Path:
        return self.root / "documents"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    @property
    def data_sft(self) -> Path:
        return self.root / "data" / "sft"

    @property
    def data_preference(self) -> Path:
        return self.root / "data" / "preference"

    @property
    def release(self) -> Path:
        return self.root / "release" / f"{RELEASE_NAME}-{RELEASE_VERSION}"

    @property
    def sft(self) -> Path:
        return self.root / "train" / "sft"

    @property
    def dpo(self) -> Path:
        return self.root / "train" / "dpo"

    @property
    def merged(self) -> Path:
        return self.root / "merge"

    def safety(self, name: str) -> Path:
        return self.root / "safety" / name

    @property
    def rag_index(self) -> Path:
        return self.root / "rag" / "index"

    def eval(self, model: str) -> Path:
        return self.root / "eval" / model

    @property
    def summary(self) -> Path:
        return self.root / "index.html"
