"""RAG throughput on the PubMedQA abstracts (../shared), or the embedded document collection if absent.

Measures, in one process:
* chunks/s indexed with 1 and with 2 embedding CPUs (Ray Data actor pools: 1 actor x 1 CPU, 2 actors
  x 1 CPU on a 3-CPU local Ray, so the actors never take every CPU);
* queries/s at k=5 for BM25, dense and hybrid (queries batched, after a warm-up pass on the same batch);
* index bytes per chunk (chunks, vectors, FAISS, BM25 files).

    uv run python benchmarks/rag.py [--docs 1000] [--queries 500]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "medical-mcqa" / "pubmedqa"


def corpus(folder: Path, docs: int) -> list[str]:
    rows, questions = [], []
    if SHARED.is_dir():
        for split in ("train", "val", "test"):
            for row in json.loads((SHARED / f"pubmedqa_{split}.json").read_text()).values():
                rows.append({"id": row["id"], "text": "\n\n".join(row["context"])})
                questions.append(row["question"])
    else:
        from aloe_fixtures.corpus.documents import medical_documents

        for d in medical_documents():
            rows.append({"id": d["id"], "title": d["title"], "text": d["text"]})
            questions.append(f"What is known about {d['title']}?")
    folder.mkdir(parents=True)
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:docs]))
    return questions[:docs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    import os

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    from aloe_core.ray_session import ensure_ray
    from aloe_infer.retrieval import IndexConfig, RetrievalConfig, Retriever, build_index

    ensure_ray(num_cpus=3, log_to_driver=False)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    questions = corpus(work / "corpus", args.docs)[: args.queries]
    rows = []
    for actors in (1, 2):
        config = IndexConfig.model_validate(
            {"embed": {"mode": "ray", "concurrency": actors, "cpus_per_actor": 1, "batch_size": 128}}
        )
        out = work / f"index-{actors}"
        started = time.perf_counter()
        manifest = build_index(work / "corpus", out, config)
        seconds = time.perf_counter() - started
        chunks = manifest["counts"]["chunks"]
        rows.append(
            (
                f"index, {actors} CPU{'s' if actors > 1 else ''}",
                f"{chunks / seconds:.1f} chunks/s",
                f"{chunks} chunks in {seconds:.1f} s (with actor start)",
            )
        )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    rows.append(("index bytes per chunk", f"{size / chunks:.0f} B", f"{size / 1e6:.1f} MB total"))
    for kind in ("bm25", "dense", "hybrid"):
        retriever = Retriever.open(out, RetrievalConfig(retriever=kind, threads=2))
        retriever.search(questions, 5)  # warm-up: one full pass first (a first large batch ran slower)
        started = time.perf_counter()
        retriever.search(questions, 5)
        seconds = time.perf_counter() - started
        rows.append(
            (f"query, {kind}, k=5", f"{len(questions) / seconds:.1f} queries/s", f"{len(questions)} queries")
        )
    print(f"\nRAG benchmark ({args.docs} documents, {chunks} chunks)")
    print(f"| {'measure':<28} | {'value':>18} | note")
    print(f"|{'-' * 30}|{'-' * 20}|------")
    for name, value, note in rows:
        print(f"| {name:<28} | {value:>18} | {note}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
