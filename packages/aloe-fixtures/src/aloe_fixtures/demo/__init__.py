"""`aloe demo`: the whole Aloe recipe on one laptop, in minutes, with nothing to download.

Embedded corpus -> every data stage (clean, exact and MinHash dedup, decontamination, DEITA scoring,
diversity selection, templates, verified chain of thought) -> dataset release -> SFT -> DPO (general)
-> red-teaming -> DPO (safety, on red-team pairs) -> red-teaming again -> DARE-TIES merge -> zero-shot,
Medprompt and RAG evaluation -> model cards -> one summary page. Every step is an `aloe` command
(:mod:`aloe_fixtures.demo.steps`), run with the tiny Llama model, on CPU; a rerun skips finished steps.
"""

from aloe_fixtures.demo.cli import demo_command
from aloe_fixtures.demo.configs import SAMPLE_PREFERENCE_SOURCES, SAMPLE_SFT_SOURCES, sample_pipeline

__all__ = ["SAMPLE_PREFERENCE_SOURCES", "SAMPLE_SFT_SOURCES", "demo_command", "sample_pipeline"]
