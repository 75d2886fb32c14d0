"""`aloe infer ...`: generate through the engine interface (aloe_infer.engine); index, retrieve and ask
with retrieval-augmented answering (aloe_infer.retrieval)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from aloe_infer.retrieval import RagConfig

app = typer.Typer(
    help="Inference and evaluation: generate with transformers or vLLM engines; RAG index, retrieve, ask.",
    no_args_is_help=True,
)


@app.command()
def generate(
    model: Annotated[str, typer.Argument(help="A Hugging Face model folder or URI (`aloe model tiny`).")],
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="User message; the model's chat template is applied.")
    ],
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 64,
    system: Annotated[str | None, typer.Option(help="Optional system message.")] = None,
    engine: Annotated[str, typer.Option(help="hf (transformers) or vllm.")] = "hf",
    temperature: Annotated[float, typer.Option(min=0, help="0 = greedy.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (same seed, same text).")] = None,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="(vllm) memory share for weights + KV cache (on CPU: of host memory).")
    ] = 0.1,
) -> None:
    """Chat generation with the transformers or vLLM engine (fp32 on CPU, bf16 on GPU)."""
    from aloe_core.config import validate_config
    from aloe_infer.engine import EngineConfig, load_engine
    from aloe_infer.sampling import SamplingParams

    config = validate_config(
        EngineConfig,
        {"type": engine, "model": model, "gpu_memory_utilization": gpu_memory_utilization},
        "command line",
    )
    params = validate_config(
        SamplingParams,
        {"max_tokens": max_new_tokens, "temperature": temperature, "seed": seed},
        "command line",
    )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    loaded = load_engine(config)
    try:
        [result] = loaded.chat([messages], params)
    finally:
        loaded.close()
    if result.error is not None:
        from aloe_core.errors import InputError

        raise InputError(f"{model}: {result.error}")
    typer.echo(result.completions[0].text)


# -- retrieval-augmented answering (aloe_infer.retrieval) ----------------------------------------------

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A RAG YAML (configs/rag/*.yaml): index, retrieval, prompt.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="key.sub=value over the YAML (e.g. retrieval.rrf_k=100); repeatable."),
]


def _rag_config(config: Path | None, overrides: list[str] | None, **flags: object) -> RagConfig:
    """The RagConfig of ``--config`` with ``--set`` overrides, then the command's own flags on top."""
    from aloe_core.config import apply_overrides, read_yaml_mapping, validate_config
    from aloe_infer.retrieval import RagConfig

    data = read_yaml_mapping(config) if config is not None else {}
    sets = [*(overrides or []), *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    data = apply_overrides(data, sets)
    source = str(config) if config is not None else "command line"
    return validate_config(RagConfig, data, f"{source} (with --set {', '.join(sets)})" if sets else source)


@app.command()
def index(
    corpus: Annotated[
        str, typer.Option("--corpus", help="A .jsonl/.json/.parquet file or a folder (or a folder URI).")
    ],
    out: Annotated[str, typer.Option("--out", help="Index folder (replaced atomically; reused files kept).")],
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Chunk, embed (Ray Data actors) and index a corpus: FAISS + BM25 + Parquet chunks with provenance."""
    from aloe_infer.retrieval import build_index

    rag = _rag_config(config, overrides)
    manifest = build_index(corpus, out, rag.index)
    counts, build = manifest["counts"], manifest["build"]
    typer.echo(
        f"{out}: {counts['files']} files, {counts['documents']} documents, {counts['chunks']} chunks "
        f"({build['embedded_chunks']} embedded, {build['reused_chunks']} reused) in {build['seconds']} s; "
        f"dropped {counts['dropped'] or 'nothing'}"
    )


@app.command()
def retrieve(
    index_dir: Annotated[
        str, typer.Option("--index", help="An index folder (or URI) from `aloe infer index`.")
    ],
    queries: Annotated[str, typer.Option("--queries", help="JSONL of {id, question} lines (or a URI).")],
    out: Annotated[
        str,
        typer.Option("--out", help="JSONL: {id, results: [{doc_id, chunk_id, score, title}]}; may be a URI."),
    ],
    k: Annotated[int, typer.Option("--k", min=1, help="Hits per query.")] = 5,
    retriever: Annotated[
        str | None, typer.Option(help="bm25, dense or hybrid (default: the config's).")
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Batch retrieval: one output line per query, best hit first (how retrievers are compared)."""
    from aloe_infer.retrieval import Retriever
    from aloe_infer.retrieval.batch import read_queries, write_results

    rag = _rag_config(config, overrides, **{"retrieval.retriever": retriever})
    ids, questions = read_queries(queries)
    opened = Retriever.open(index_dir, rag.retrieval)
    write_results(out, ids, opened.search(questions, k))
    typer.echo(f"{out}: {len(ids)} queries, top {k} by {opened.config.retriever}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    index_dir: Annotated[
        str, typer.Option("--index", help="An index folder (or URI) from `aloe infer index`.")
    ],
    model: Annotated[str, typer.Option("--model", help="A Hugging Face model folder (or URI) that answers.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Chunks retrieved.")] = 5,
    engine: Annotated[str, typer.Option(help="hf (transformers) or vllm.")] = "hf",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens of answer at most.")] = 256,
    retriever: Annotated[
        str | None, typer.Option(help="bm25, dense or hybrid (default: the config's).")
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Answer a question from the index's sources; prints the answer and the numbered sources used."""
    from aloe_core.config import validate_config
    from aloe_core.errors import InputError
    from aloe_infer.engine import EngineConfig, check_model_dir, load_engine
    from aloe_infer.retrieval import Retriever
    from aloe_infer.retrieval.answer import answer
    from aloe_infer.sampling import SamplingParams

    rag = _rag_config(config, overrides, **{"retrieval.retriever": retriever})
    opened = Retriever.open(index_dir, rag.retrieval)
    check_model_dir(model)
    engine_config = validate_config(EngineConfig, {"type": engine, "model": model}, "command line")
    loaded = load_engine(engine_config)
    try:
        params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0)
        result = answer(question, opened, loaded, k=k, prompt=rag.prompt, params=params)
    finally:
        loaded.close()
    if result.error is not None:
        raise InputError(f"{model}: {result.error}")
    typer.echo(result.text)
    typer.echo("\nSources:")
    for n, hit in enumerate(result.context.sources, start=1):
        typer.echo(f"[{n}] {hit.title or '(untitled)'} (id {hit.doc_id}, chunk {hit.chunk_id})")
    if not result.context.sources:
        typer.echo("(none fitted the prompt)")
