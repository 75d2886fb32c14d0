"""DEITA-style scoring and diversity selection helpers, independent of Ray.

* :mod:`~aloe_data.scoring.prompts`: DEITA's prompt templates, conversation turns, the truncation rule.
* :mod:`~aloe_data.scoring.scorer`: the expected 1-6 score from a next-token scorer; the scorers
  themselves (transformers and vLLM) are :mod:`aloe_infer.scoring`.
* :mod:`~aloe_data.scoring.greedy`: exact and clustered greedy "high score, not too similar" selection.

Sentence embeddings (MiniLM by default) are :mod:`aloe_infer.embeddings`.
The stages (:mod:`aloe_data.stages.deita`, :mod:`aloe_data.stages.select`) wrap these in Ray Data.
"""
