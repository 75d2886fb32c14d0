"""The pipeline config: one YAML file naming the sources, the stages in order, and the shard size."""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator

from aloe_core.config import StrictModel
from aloe_core.shards import Kind
from aloe_data.sources import SourceConfig
from aloe_data.stages import StageConfigUnion


class OutputConfig(StrictModel):
    """How stage outputs are cut into Parquet shards."""

    shard_rows: int = Field(100_000, gt=0, description="Rows per output Parquet file at most.")
    shard_bytes: int | None = Field(None, gt=0, description="And about this many bytes per file, if set.")


class InProcessConfig(StrictModel):
    """When a tiny input skips Ray (:mod:`aloe_data.pipeline.local` states the rule)."""

    max_rows: int = Field(
        10_000,
        ge=0,
        description="Row-local stages (ingest, clean, template) over at most this many rows run in this "
        "process, without starting Ray; 0 always uses Ray.",
    )
    max_source_bytes: int = Field(
        8 << 20, ge=0, description="Ingest runs in this process when its source files total at most this."
    )


class PipelineConfig(StrictModel):
    """``aloe data run CONFIG --out DIR``: sources -> 01-ingest -> stages in order -> report."""

    kind: Kind = "sft"
    sources: list[SourceConfig] = Field(min_length=1)
    stages: list[StageConfigUnion] = Field(default_factory=list)  # type: ignore[valid-type]
    output: OutputConfig = OutputConfig()
    in_process: InProcessConfig = InProcessConfig()
    ray_cpus: int | None = Field(
        None,
        gt=0,
        validation_alias=AliasChoices("ray_cpus", "num_cpus"),
        description="CPUs of the local Ray started when RAY_ADDRESS is not set (default: all).",
    )
    report: bool = True

    @model_validator(mode="after")
    def _unique_stage_dirs(self) -> PipelineConfig:
        names = [s.name or s.type for s in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stage names {duplicates} repeat; give repeated stages a distinct `name`")
        source_names = [s.name for s in self.sources]
        if len(set(source_names)) != len(source_names):
            raise ValueError("source names must be unique")
        return self

    def stage_dirs(self) -> list[str]:
        """Directory of each stage in run order: ``01-ingest``, ``02-clean``, ..."""
        names = ["ingest", *((s.name or s.type) for s in self.stages)]
        return [f"{i:02d}-{name.replace('_', '-')}" for i, name in enumerate(names, start=1)]
