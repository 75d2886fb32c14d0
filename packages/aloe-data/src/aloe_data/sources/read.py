"""Entry points: check a run's sources before any work, and read them into one annotated Dataset."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow.fs as pafs
import ray

from aloe_core.errors import InputError
from aloe_data.pipeline.shard_reader import planned_read
from aloe_data.sources.config import FORMAT_FAMILY, SourceConfig, kinds_for_format
from aloe_data.sources.datasource import SourcesDatasource
from aloe_data.sources.paths import FileUnit, resolve_entry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourcePlan:
    """What :func:`read_sources` will read: the filesystem and every file, in reading order."""

    filesystem: pafs.FileSystem
    units: list[FileUnit]

    def files_of(self, source_index: int) -> list[FileUnit]:
        return [u for u in self.units if u.source_index == source_index]

    def total_bytes(self) -> int:
        """Bytes of every file (as stored: compressed files count compressed)."""
        return sum(info.size or 0 for info in self.filesystem.get_file_info([u.path for u in self.units]))


def _check_kind(source: SourceConfig, kind: str) -> None:
    if source.format is None:
        raise InputError(f"source {source.name!r}: no format; resolve_formats() guesses it first")
    kinds = kinds_for_format(source.format)
    if kind not in kinds:
        raise InputError(
            f"source {source.name!r}: format {source.format!r} gives {FORMAT_FAMILY[source.format]} rows, "
            f"which a {kind!r} run cannot use (it can be read in a {' or '.join(map(repr, kinds))} run); "
            "move the source to a run of that kind or change its format"
        )


def _check_unique(sources: list[SourceConfig], units: list[FileUnit], entries: list[str]) -> None:
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"source names {repeated} repeat; every source needs its own name")
    owner: dict[str, FileUnit] = {}
    for unit in units:
        other = owner.setdefault(unit.path, unit)
        if other is not unit:
            a, b = sources[other.source_index].name, sources[unit.source_index].name
            raise InputError(
                f"file {unit.path} is matched twice (sources {a!r} and {b!r}); "
                "each file must be read by exactly one source, once"
            )
    seen: dict[tuple[int, str], str] = {}
    for unit, entry in zip(units, entries, strict=True):
        first = seen.setdefault((unit.source_index, unit.rel), entry)
        if first != entry:
            raise InputError(
                f"source {sources[unit.source_index].name!r}: paths {first!r} and {entry!r} both hold a file "
                f"named {unit.rel!r} relative to their roots, so rows could not tell them apart; "
                "use one path (their common parent folder or a glob) instead"
            )


def check_sources(sources: list[SourceConfig], kind: str) -> SourcePlan:
    """Check every source of a run of ``kind`` and list the files to read, before any work starts.

    Sources keep their config order; each path entry's files are sorted by their path relative to the
    entry's root, entries in the order given.

    Raises:
        InputError: naming the source and path: a format that cannot give ``kind`` rows, a path that
            matches no file, an unreadable folder or file, a file matched twice, repeated source names,
            or sources on different filesystems.
    """
    if not sources:
        raise InputError("no sources configured; add at least one entry under `sources:`")
    for source in sources:
        _check_kind(source, kind)
    filesystem: pafs.FileSystem | None = None
    units: list[FileUnit] = []
    entries: list[str] = []
    for index, source in enumerate(sources):
        for entry in source.paths:
            fs, found = resolve_entry(source, index, entry)
            if filesystem is None:
                filesystem = fs
            elif fs.type_name != filesystem.type_name:
                raise InputError(
                    f"source {source.name!r}: path {entry!r} is on {fs.type_name}, other sources on "
                    f"{filesystem.type_name}; one run reads from one filesystem"
                )
            units += found
            entries += [entry] * len(found)
    _check_unique(sources, units, entries)
    assert filesystem is not None  # at least one source, and every entry matched at least one file
    return SourcePlan(filesystem, units)


def read_sources(sources: list[SourceConfig], kind: str, *, cpus: int | None = None) -> ray.data.Dataset:
    """One Dataset over every row of every source, each with the columns of
    ``annotated_schema(kind)``: good rows with ``drop_reason`` null, unreadable ones quarantined as
    ``malformed`` (see :mod:`aloe_data.sources.records`).

    Files are read and rows normalised inside Ray read tasks, streaming (no file is ever loaded whole),
    big JSONL files in parts (:mod:`aloe_data.sources.pieces`).
    The returned Dataset has ``preserve_order`` set, so rows come in source order, then file order, then
    the order inside each file, on every run; Datasets derived from it inherit that setting.

    Args:
        sources: the run's sources, in config order.
        kind: ``sft`` or ``preference`` (``mcqa`` is also accepted for MCQA layouts: benchmark sets).
        cpus: CPUs the read tasks are planned for (default: the cluster's).

    Raises:
        InputError: from :func:`check_sources`, before any Ray work.
    """
    plan = check_sources(sources, kind)
    counts = {s.name: len(plan.files_of(i)) for i, s in enumerate(sources)}
    logger.info("reading %d files: %s", len(plan.units), counts)
    if cpus is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
    datasource = SourcesDatasource(plan.units, sources, kind, plan.filesystem, cpus)
    return planned_read(datasource, datasource.num_tasks)
