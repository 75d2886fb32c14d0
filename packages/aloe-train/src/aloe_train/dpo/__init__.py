"""DPO in stages: config, preference data with reference log-probs (data), losses (loss), the recipe
and its driver (recipe), `aloe train dpo` (cli)."""
