"""Loading a Hugging Face causal LM the way every transformers-backed piece of aloe-infer does.

One loader for the transformers engine (:mod:`aloe_infer.hf_engine`) and the next-token scorer
(:mod:`aloe_infer.scoring`), so both read weights the same safe way: a local folder (a URI's local copy,
see :func:`aloe_infer.engine.model_files`), safetensors only (no pickle), ``trust_remote_code`` only when
the config turns it on, and the device and dtype rule of :mod:`aloe_infer.devices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aloe_infer.devices import resolve_device, torch_dtype
from aloe_infer.engine import EngineConfig, model_files


@dataclass
class HFModel:
    """A loaded causal LM in eval mode, its tokenizer, and the device it sits on."""

    model: Any
    tokenizer: Any
    device: str


def load_hf_model(config: EngineConfig) -> HFModel:
    """The model and tokenizer of ``config.model`` on ``config.device`` in ``config.dtype``.

    Raises:
        InputError: the folder is missing or is not a Hugging Face model folder.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_files(config.model)  # a URI: this process's local copy
    device = resolve_device(config.device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch_dtype(config.dtype, device),
        use_safetensors=True,
        trust_remote_code=config.trust_remote_code,
    ).to(device)
    model.eval()
    return HFModel(model, tokenizer, device)
