"""Settings of a RAG index build and of retrieval: the one place each default is written.

Defaults cite where they come from: MedRAG (medical RAG benchmark: BM25 + a dense retriever, RRF with
k=100, FAISS flat, HNSW optional), FlashRAG (FAISS ``index_factory`` strings, bm25s, RRF with k=60),
Cormack et al. 2009 (RRF, k=60) and the embedding model's own sequence length.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aloe_core.config import StrictModel
from aloe_infer.actors import ActorPoolConfig

RetrieverKind = Literal["dense", "bm25", "hybrid"]


class DocumentFields(StrictModel):
    """Which keys of a JSONL/JSON/Parquet row hold a document's id, title and text.

    MedRAG's corpora use ``content`` for the text (set ``text: content``); a missing id becomes
    ``<file>:<row>``, a missing title the empty string.
    """

    id: str = "id"
    title: str = "title"
    text: str = "text"


class ChunkingConfig(StrictModel):
    """Token windows of the embedding model's tokenizer.

    MiniLM reads 256 tokens (2 of them special); the chunk's title is embedded with it, so windows of 192
    leave room for a title before truncation. The overlap keeps a sentence cut at a boundary whole in
    one of the two chunks.
    """

    chunk_tokens: int = Field(192, ge=8)
    overlap_tokens: int = Field(32, ge=0)

    @model_validator(mode="after")
    def _overlap_below_window(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        return self


class DenseIndexConfig(StrictModel):
    """The FAISS index over unit-norm embeddings (inner product = cosine).

    ``factory`` is a FAISS ``index_factory`` string, as in FlashRAG: ``Flat`` (exact, the default, as
    MedRAG and FlashRAG), ``HNSW32`` (graph, fast, all vectors in memory) or ``IVF65536,PQ48`` (for
    corpora past memory: 48 bytes a vector; trained on ``train_size`` sampled vectors).
    """

    factory: str = "Flat"
    train_size: int = Field(200_000, ge=1)  # vectors sampled to train IVF/PQ factories
    hnsw_ef_construction: int = Field(200, ge=8)  # HNSW build breadth (FAISS default 40 is low for recall)


class BM25Config(StrictModel):
    """bm25s settings; k1/b are Lucene's (and pyserini's, which MedRAG uses)."""

    k1: float = Field(0.9, gt=0)  # pyserini's default BM25 k1
    b: float = Field(0.4, ge=0, le=1)  # pyserini's default BM25 b
    stemmer: Literal["english", "none"] = "english"  # Snowball English, via PyStemmer
    stopwords: Literal["en", "none"] = "en"


class IndexConfig(StrictModel):
    """How ``aloe infer index`` turns a corpus into an index folder."""

    embedding_model: str | None = None  # local sentence-encoder folder; None: the packaged MiniLM
    fields: DocumentFields = DocumentFields()
    chunking: ChunkingConfig = ChunkingConfig()
    dense: DenseIndexConfig = DenseIndexConfig()
    bm25: BM25Config = BM25Config()
    # Embedding runs as Ray Data actor pools (aloe_infer.actors.run_pass); on GPU nodes set num_gpus: 1
    # and device: cuda, one actor per GPU.
    embed: ActorPoolConfig = ActorPoolConfig(batch_size=256)
    device: str = "cpu"  # of the embedding actors: cpu or cuda
    max_batch_tokens: int = Field(16384, ge=1)  # padded tokens per embedding forward pass
    embed_group_chunks: int = Field(100_000, ge=1)  # new chunks embedded per pass (bounds driver memory)


class RetrievalConfig(StrictModel):
    """How :class:`~aloe_infer.retrieval.retriever.Retriever` answers queries."""

    retriever: RetrieverKind = "hybrid"
    rrf_k: int = Field(60, ge=1)  # 1/(rrf_k + rank); Cormack et al. and FlashRAG use 60, MedRAG 100
    candidates: int = Field(100, ge=1)  # hits taken from each retriever before fusion / re-ranking
    embedding_model: str | None = None  # must be the index's model (checked); None: the packaged MiniLM
    device: str = "cpu"  # query embedding and re-ranking
    nprobe: int = Field(32, ge=1)  # IVF lists visited per query
    ef_search: int = Field(128, ge=1)  # HNSW search breadth
    rerank_model: str | None = None  # a local cross-encoder folder (e.g. MedCPT-Cross-Encoder); None: off
    rerank_candidates: int = Field(50, ge=1)  # fused hits the cross-encoder re-scores
    rerank_max_length: int = Field(512, ge=8)  # query + passage tokens the cross-encoder reads
    threads: int | None = Field(None, ge=1)  # FAISS / torch threads; None: their defaults


class PromptConfig(StrictModel):
    """How retrieved chunks are fitted into the answer prompt."""

    context_tokens: int = Field(1024, ge=16)  # budget for the numbered sources, in the model's tokens
    min_tokens: int = Field(32, ge=1)  # a last source cut shorter than this is left out instead
