"""The embedded synthetic medical corpus: source files in public formats, planted defects, ground truth.

Everything is generated from a compact fact table written for this project (drugs, diseases, lab ranges,
anatomy, microbiology, physiology), so tests, benchmarks and the demo need no downloads.

Public API:

* :func:`tokenizer_training_texts` - clean English texts of every task type, for training a tiny tokenizer;
* :func:`write_sample` - the corpus as MCQA (prompt-engine, MedMCQA, MedQA), PubMedQA, chat (OpenAI,
  ShareGPT, Alpaca) and preference files, a held-out benchmark, and ``ground_truth.json`` listing every
  planted defect (duplicates, near duplicates, benchmark leaks, PII, bad answers, non-English, too long,
  malformed);
* :class:`DefectRates` - the planted-defect rates (documented defaults).
"""

from aloe_fixtures.corpus.defects import KINDS, DefectRates, expected_count
from aloe_fixtures.corpus.formats import BENCHMARK_FILE, record_full_text, record_matching_text
from aloe_fixtures.corpus.sample import FILE_SHARES, tokenizer_training_texts, write_sample

__all__ = [
    "BENCHMARK_FILE",
    "FILE_SHARES",
    "KINDS",
    "DefectRates",
    "expected_count",
    "record_full_text",
    "record_matching_text",
    "tokenizer_training_texts",
    "write_sample",
]
