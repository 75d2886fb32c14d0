"""What a pipeline stage is.

A stage is a ``Dataset -> Dataset`` unit with a frozen config. It returns every input row, marking the
rows it drops with ``drop_reason`` (see :mod:`aloe_data.pipeline.annotations`); the runner writes the
result, checks the row invariant and records the manifest entry. Stages never write files themselves, so
each one is also usable on its own (``aloe data <stage> --input --output``) and in tests.

To add a stage: write a module in ``aloe_data/stages`` with a config class (``type: Literal["name"]``,
each field with a ``Field(description=...)``) and a :class:`Stage` subclass, and add the class to
``aloe_data.stages.STAGE_CLASSES``. Configs can then name it, and ``aloe data <command>`` appears by
itself, its options generated from the config class (:mod:`aloe_data.commands`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from aloe_core.config import StrictModel
from aloe_core.shards import Kind
from aloe_data.pipeline.batching import map_in_batches, slices

if TYPE_CHECKING:  # Ray Data takes seconds to import; config classes and `aloe data --help` need none
    import pyarrow as pa
    import ray.data


class StageConfig(StrictModel):
    """Base of every stage config; subclasses narrow ``type`` to a Literal naming the stage."""

    type: str
    name: str | None = Field(
        None, description="Stage folder name in a run, for two stages of one type (default: the type)."
    )


@dataclass(frozen=True)
class StageContext:
    """What a stage may know about the run it is part of."""

    kind: Kind
    out_dir: Path
    stage_dir: str
    cluster_cpus: int  # CPUs of the Ray cluster the stage runs on (local or RAY_ADDRESS)
    extras: dict[str, Any] = field(default_factory=dict)


class Stage(ABC):
    """A ``Dataset -> Dataset`` step: annotate rows, never drop them (the writer does)."""

    config_class: ClassVar[type[StageConfig]]
    # The `aloe data` command that runs the stage alone (default: the type, `_` -> `-`).
    command: ClassVar[str | None] = None
    # Extra options of that command for nested config fields: option name -> dotted field path, e.g.
    # {"model": "engine.model"}; the option takes the nested field's type, default and description.
    cli_shortcuts: ClassVar[dict[str, str]] = {}
    # Other names of a field's option, e.g. {"benchmarks": ("-b",)}; the field's own name always works.
    cli_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Ingest reads its rows from the run's sources instead of an upstream stage (rows_in = rows read).
    reads_sources: ClassVar[bool] = False
    # Each output row depends on its input row alone, so a tiny input may run in the driver through
    # `process_tables` instead of on Ray (aloe_data.pipeline.local).
    row_local: ClassVar[bool] = False
    # The stage maps through a pool of Ray actors (models: scoring, embedding, generation). Its run keeps
    # Ray Data's per-operator resource reservation, which task-only stages run without
    # (:func:`aloe_data.pipeline.runner.resource_reservation`).
    uses_actor_pool: ClassVar[bool] = False

    def __init__(self, config: StageConfig) -> None:
        self.config = config

    @classmethod
    def type_name(cls) -> str:
        return cls.config_class.model_fields["type"].default

    @classmethod
    def command_name(cls) -> str:
        return cls.command or cls.type_name().replace("_", "-")

    def fingerprint(self) -> str:
        """What the stage's output depends on beyond its config (e.g. the bytes of a benchmark file the
        config names by path); part of the resume key. Empty for stages that depend on config only."""
        return ""

    @abstractmethod
    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        """Return ``ds`` with annotation columns; every input row must come out exactly once."""

    def process_tables(self, tables: Iterable[pa.Table], ctx: StageContext) -> Iterator[pa.Table]:
        """What :meth:`apply` does, on tables in this process (only for ``row_local`` stages)."""
        raise TypeError(f"{type(self).__name__} is not row-local: it runs on Ray only")


class BatchStage(Stage):
    """A stage that looks at one batch at a time (no shuffle): implement :meth:`process`."""

    batch_size: ClassVar[int] = 1024
    row_local = True

    @abstractmethod
    def process(self, table: pa.Table, kind: str) -> pa.Table:
        """Annotate one batch; must return the same number of rows."""

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        kind = ctx.kind
        process = self.process

        def run(table: pa.Table) -> pa.Table:
            out = process(table, kind)
            if out.num_rows != table.num_rows:
                raise AssertionError(
                    f"{type(self).__name__} changed a batch from {table.num_rows} rows to {out.num_rows}"
                )
            return out

        return map_in_batches(ds, run, self.batch_size)

    def process_tables(self, tables: Iterable[pa.Table], ctx: StageContext) -> Iterator[pa.Table]:
        for table in tables:
            if table.num_rows:
                for batch in slices(table, self.batch_size):
                    yield self.process(batch, ctx.kind)
