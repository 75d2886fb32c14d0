"""Supervised fine-tuning: packed assistant-only data (data), the recipe and its driver (recipe),
`aloe train sft` (cli)."""
