"""Model merging (`aloe train merge CONFIG`): linear, task arithmetic, TIES, DARE-TIES, DARE-linear.

mergekit-compatible YAML (:mod:`.config`), mergekit's arithmetic (:mod:`.methods`), per-tensor parameter
resolution (:mod:`.params`), input checks and the tensor plan (:mod:`.plan`), streamed safetensors I/O
(:mod:`.io`), the model card (:mod:`.card`) and the run itself (:mod:`.run`).
"""

from aloe_train.merge.config import METHODS, MergeConfig, load_merge_config
from aloe_train.merge.run import run_merge

__all__ = ["METHODS", "MergeConfig", "load_merge_config", "run_merge"]
