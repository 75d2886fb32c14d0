"""aloe fixtures: the embedded corpus, the tiny-model factory and the demo (no downloads needed)."""
