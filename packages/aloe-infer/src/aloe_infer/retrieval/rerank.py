"""Cross-encoder re-ranking: query and passage read together, one relevance score per pair.

prompt_engine (Aloe's own) re-ranks with MedCPT's cross-encoder; any local sequence-classification
folder with safetensors weights works (one output = its score; two = the log-probability of the
second, "relevant", class). Pairs are grouped under a padded-token budget, longest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aloe_core.errors import InputError
from aloe_infer.batching import micro_batches


class CrossEncoder:
    """Scores ``(query, passage)`` pairs with a local cross-encoder folder."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        max_length: int = 512,
        max_batch_tokens: int = 16384,
    ) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(model_path)
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder}: cross-encoder folder not found (a local folder is required)")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).to(
            device
        )
        self.model.eval()
        self.device, self.max_length, self.max_batch_tokens = device, max_length, max_batch_tokens

    def score(self, query: str, passages: list[str]) -> np.ndarray:
        """One float per passage (higher = more relevant)."""
        out = np.zeros(len(passages), dtype=np.float32)
        if not passages:
            return out
        encoded = self.tokenizer(
            [query] * len(passages), passages, truncation="only_second", max_length=self.max_length
        )
        rows = [{key: encoded[key][i] for key in encoded} for i in range(len(passages))]
        for group in micro_batches([len(r["input_ids"]) for r in rows], self.max_batch_tokens):
            out[group] = self._forward([rows[i] for i in group])
        return out

    def _forward(self, rows: list[dict[str, list[int]]]) -> np.ndarray:
        import torch

        batch = self.tokenizer.pad(rows, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**batch).logits.float()
        if logits.shape[-1] == 1:
            return logits[:, 0].cpu().numpy()
        return torch.log_softmax(logits, dim=-1)[:, -1].cpu().numpy()
