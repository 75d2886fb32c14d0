"""Guessing a source's record layout from its first rows, for ``aloe data ingest`` without ``--format``
and sources in a YAML config without ``format``.

The first :data:`SNIFF_ROWS` decodable rows of the source's first files are compared with each layout's
top-level keys (:data:`~aloe_core.layouts.LAYOUT_KEYS`). One layout must fit clearly: none is an
error naming the keys seen; several fitted by similar numbers of rows (rows that fit two layouts, or
files of different layouts) an error naming the candidates; both ask for an explicit ``format``. Rows
fitting no layout, or a layout that only a few rows fit (:data:`MINORITY`), are taken for broken rows
(the reader quarantines them as ``malformed`` later), so a few of them do not block the guess.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aloe_core.containers import READERS
from aloe_core.errors import InputError
from aloe_core.layouts import LAYOUT_KEYS, layouts_matching
from aloe_data.sources.config import SourceConfig
from aloe_data.sources.paths import resolve_entry

logger = logging.getLogger("aloe.data")

SNIFF_ROWS = 20
# A layout fitted by at most 1/MINORITY as many rows as the main one is taken for broken rows of the main
# layout (e.g. an MCQA item missing its options looks like an open question); closer counts are ambiguous.
MINORITY = 4


def first_rows(source: SourceConfig, index: int = 0, limit: int = SNIFF_ROWS) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` decoded rows from the first files of ``source`` (in reading order)."""
    seen = 0
    for entry in source.paths:
        fs, units = resolve_entry(source, index, entry)
        for unit in units:
            opener = fs.open_input_file if unit.container == "parquet" else fs.open_input_stream
            with opener(unit.path) as handle:
                for raw in READERS[unit.container](handle):
                    if raw.value is None:
                        continue
                    yield raw.value
                    seen += 1
                    if seen >= limit:
                        return


def _expected() -> str:
    def keys(name: str) -> str:
        return " or ".join("{" + ", ".join(sorted(req)) + "}" for req, _ in LAYOUT_KEYS[name])

    return "; ".join(f"{name} {keys(name)}" for name in LAYOUT_KEYS)


def sniff_format(source: SourceConfig, index: int = 0) -> str:
    """The one layout that fits the first rows of ``source``.

    Raises:
        InputError: one line: no row fits a layout (names the keys seen and every layout's keys), or
            the rows fit several layouts (names them); both ask for an explicit format.
    """
    votes: Counter[str] = Counter()
    seen_keys: Counter[str] = Counter()
    rows = 0
    for row in first_rows(source, index):
        rows += 1
        seen_keys.update(list(row))
        votes.update(layouts_matching(frozenset(row)))
    where = f"source {source.name!r} ({', '.join(source.paths)})"
    if not votes:
        keys = ", ".join(k for k, _ in seen_keys.most_common(12)) or "no decodable rows"
        raise InputError(
            f"{where}: unknown layout: the first {rows} rows have keys [{keys}], which fit none of "
            f"{_expected()}; set the format (--format)"
        )
    ranked = votes.most_common()
    candidates = ", ".join(f"{name} ({n} of {rows} rows)" for name, n in ranked)
    if len(ranked) > 1 and ranked[1][1] * MINORITY > ranked[0][1]:
        raise InputError(
            f"{where}: ambiguous layout: the first rows fit {candidates}; set the format (--format)"
        )
    if len(ranked) > 1:
        logger.warning("source %r: rows fit %s; reading it as %s", source.name, candidates, ranked[0][0])
    return ranked[0][0]


def resolve_formats(sources: list[SourceConfig]) -> list[SourceConfig]:
    """``sources`` with every missing ``format`` filled in by :func:`sniff_format` (logged)."""
    resolved = []
    for index, source in enumerate(sources):
        if source.format is None:
            fmt = sniff_format(source, index)
            logger.info("source %r: no format given; its first rows are %s", source.name, fmt)
            source = source.model_copy(update={"format": fmt})
        resolved.append(source)
    return resolved
