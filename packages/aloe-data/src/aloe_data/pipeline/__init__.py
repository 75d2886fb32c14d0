"""The stage mechanism: stages as Dataset -> Dataset units, atomic Parquet shards, manifest, resume."""
