"""Ingest: the first stage of every run (``01-ingest``), reading the configured sources into records.

It is a stage like the others for the runner (keyed, written, checked and recorded the same way); it
only differs in reading its rows from the sources instead of an upstream stage (``reads_sources``), so
``rows_in`` is the number of rows read. It is not listed in ``STAGE_CLASSES``: a run always starts with
it, built from the config's ``sources``, and ``aloe data ingest`` has its own options (one source).

Sources without a ``format`` get one guessed from their first rows when the stage is built (see
:mod:`aloe_data.sources.sniff`), so the manifest records the layout that was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from aloe_data.pipeline.stage import Stage, StageConfig, StageContext
from aloe_data.sources import SourceConfig, read_sources, resolve_formats
from aloe_data.sources.datasource import read_units_in_process
from aloe_data.sources.read import check_sources

if TYPE_CHECKING:
    import pyarrow as pa
    import ray.data


class IngestConfig(StageConfig):
    type: Literal["ingest"] = "ingest"
    sources: list[SourceConfig] = Field(min_length=1, description="The run's sources, in reading order.")


class IngestStage(Stage):
    """Read every source into annotated records; unreadable rows are quarantined as ``malformed``."""

    config_class = IngestConfig
    config: IngestConfig
    reads_sources = True

    def __init__(self, config: IngestConfig) -> None:
        super().__init__(config.model_copy(update={"sources": resolve_formats(config.sources)}))

    row_local = True

    def apply(self, ds: ray.data.Dataset | None, ctx: StageContext) -> ray.data.Dataset:
        return read_sources(self.config.sources, ctx.kind, cpus=ctx.cluster_cpus)

    def process_tables(self, tables: Iterable[pa.Table], ctx: StageContext) -> Iterator[pa.Table]:
        """The rows of every source read in this process (``tables`` is empty: ingest has no input)."""
        plan = check_sources(self.config.sources, ctx.kind)
        return read_units_in_process(plan.units, self.config.sources, ctx.kind, plan.filesystem)
