"""aloe-infer."""
