"""Safety red-teaming: attack success rate per topic and jailbreak style, judged two ways.

* :mod:`~aloe_infer.safety.prompts`: the prompt set as data (the shipped medical set, your YAML, or an
  Egida-style JSONL); held-out styles.
* :mod:`~aloe_infer.safety.generate`: answers (and judge calls) through the engine in Ray Data actors.
* :mod:`~aloe_infer.safety.rubrics`: the pinned LLM-judge rubrics (StrongREJECT, HarmBench) and their
  parsers; :mod:`~aloe_infer.safety.refusal`: the transparent refusal classifier;
  :mod:`~aloe_infer.safety.judge`: both together, the final verdict and their agreement.
* :mod:`~aloe_infer.safety.report`: ASR tables with Wilson intervals, the heatmap, run comparison.
* :mod:`~aloe_infer.safety.run`: one eval into a run folder (`aloe eval safety`).

The DPO pairs built from a run live in aloe-data (`aloe data redteam-pairs`).
"""
