"""Synthetic chain-of-thought generation, the parts of the ``cot`` stage (aloe_data.stages.cot):

* :mod:`~aloe_data.cot.config`: the stage config and the key that names a config's results;
* :mod:`~aloe_data.cot.prompt`: the teacher prompt and answer forcing;
* :mod:`aloe_infer.answers`: reading the answer out of a reasoning and checking it;
* :mod:`~aloe_data.cot.generate`: attempts, retries and results with any engine (no Ray);
* :mod:`~aloe_data.cot.chunks`: finished results on disk, for resuming;
* :mod:`~aloe_data.cot.actor`: the Ray Data actor that ties them together.
"""
