"""Single-core throughput of ingest's row building: as it is vs the ``json.dumps`` / ``from_pylist`` path.

    uv run python benchmarks/ingest.py --rows 200000

Writes the embedded corpus (``aloe_fixtures.corpus.write_sample``), then reads its sft sources in this
process the way every ingest read task does (``read_units_in_process``: parse, layouts, validation, ids,
meta, Arrow blocks; no Parquet write, no Ray), pinned to one core and timed in CPU time, alternating:

* **aloe**: record ids through ``aloe_core.schemas.canonical_json`` (contents written directly with the
  C string escaper) and blocks built column by column (``table_from_rows``);
* **reference**: the same reader with ids through ``json.dumps(content, sort_keys=True,
  separators=(",", ":"))`` and blocks through ``pa.Table.from_pylist``, what ingest did before (the
  other savings of the change, encoders built once and required fields cached, are in both).

Each is timed best of ``--repeats`` after one warm-up read; the tables of both are asserted equal
(same ids, same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pyarrow as pa


@contextmanager
def reference_path():
    """Ingest as it was: ids from json.dumps, blocks from from_pylist."""
    from aloe_core import schemas
    from aloe_data.sources import datasource

    def dumps(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def from_pylist(rows, schema):
        return pa.Table.from_pylist(rows, schema=schema)

    with (
        mock.patch.object(schemas, "canonical_json", dumps),
        mock.patch.object(datasource, "table_from_rows", from_pylist),
    ):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.sources import resolve_formats
    from aloe_data.sources.datasource import read_units_in_process
    from aloe_data.sources.read import check_sources
    from aloe_fixtures.corpus import write_sample
    from aloe_fixtures.demo import sample_pipeline

    with tempfile.TemporaryDirectory() as folder:
        write_sample(Path(folder), rows=args.rows, seed=0)
        config = validate_config(PipelineConfig, sample_pipeline(Path(folder), "sft"))
        sources = resolve_formats(config.sources)
        plan = check_sources(sources, "sft")

        def read() -> tuple[float, pa.Table]:
            start = time.process_time()
            table = pa.concat_tables(read_units_in_process(plan.units, sources, "sft", plan.filesystem))
            return time.process_time() - start, table

        read()  # warm-up: first imports and caches of the layouts, not either path's cost
        best = {"aloe": float("inf"), "reference": float("inf")}
        tables = {}
        for _ in range(args.repeats):
            for name in best:
                if name == "reference":
                    with reference_path():
                        seconds, tables[name] = read()
                else:
                    seconds, tables[name] = read()
                best[name] = min(best[name], seconds)
    assert tables["aloe"].equals(tables["reference"]), "the two paths gave different tables"
    rows = tables["aloe"].num_rows
    print(
        f"load {os.getloadavg()[0]:.2f}; {rows} sft rows (malformed included), "
        f"best of {args.repeats}, CPU time"
    )
    for name, seconds in best.items():
        print(f"  {name:10s} {seconds:6.2f} s  {rows / seconds:8,.0f} rows/s per core")
    print(f"  aloe {best['reference'] / best['aloe']:.2f}x the reference; tables equal")


if __name__ == "__main__":
    main()
