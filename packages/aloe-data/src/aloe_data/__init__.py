"""aloe-data: Ray Data pipelines from raw sources to clean, deduplicated, scored Parquet shards."""

__version__ = "0.1.0"
