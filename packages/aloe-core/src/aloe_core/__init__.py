"""aloe-core."""
