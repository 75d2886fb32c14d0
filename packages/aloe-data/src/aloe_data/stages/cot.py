"""Synthetic chain of thought: rewrite MCQA answers as step-by-step reasoning from a teacher LLM that is
given the reference answer, keeping only reasoning whose final answer is the reference.

For every sft row with an MCQA item the teacher gets the ``prompt`` template (question, options,
context, reference answer, "end with ``Answer: <letter>``"), its answer is read back
(:mod:`aloe_infer.answers`), and up to ``max_retries`` new-seed attempts follow for rows that fail.
Rows end up exactly once as

* kept: the assistant message is the verified reasoning (ending in ``Answer: B``), ``meta.cot`` records
  the attempts, model and prompt;
* dropped ``cot_unverified``: no attempt stated the reference answer (``drop_detail`` lists each
  attempt's outcome, ``meta.cot.last_output`` the last text) - never passed on with a wrong answer;
* dropped ``cot_error``: the engine rejected the row (e.g. prompt longer than ``max_model_len``);
  the job goes on.

Rows without an MCQA item pass through (or are dropped ``cot_not_applicable`` with ``non_mcqa: drop``).

Generation runs in a Ray Data actor pool (``concurrency`` actors, ``num_gpus``/``cpus_per_actor`` each, one
engine per actor: vLLM or transformers, see :mod:`aloe_infer.engine`); the same config scales from
one CPU actor with the tiny model to GPU actors with tensor-parallel vLLM engines. Results are written
per batch to a chunk folder (``chunk_dir``, default ``<run>/_cot_chunks/<stage dir>/``; local or a URI,
each chunk one atomic write, see :mod:`aloe_data.cot.chunks`), so a killed
job resumes without regenerating finished rows, and an actor that dies is restarted by Ray with its
batch retried.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import ClassVar

import ray.data

from aloe_core import storage
from aloe_core.errors import AloeError, ConfigError
from aloe_data.cot import chunks
from aloe_data.cot.actor import CotActor
from aloe_data.cot.config import CotConfig, CotSampling
from aloe_data.pipeline.stage import Stage, StageContext
from aloe_data.templates import TemplateLibrary
from aloe_infer.engine import check_model_dir

__all__ = ["CotConfig", "CotSampling", "CotStage"]

logger = logging.getLogger(__name__)

CHUNKS_DIR = "_cot_chunks"


class CotStage(Stage):
    """Rewrite MCQA answers as verified step-by-step reasoning; unverifiable rows drop as cot_unverified.

    Loads and checks the prompt template when built.
    """

    config_class = CotConfig
    uses_actor_pool = True
    cli_shortcuts: ClassVar[dict[str, str]] = {"model": "engine.model", "engine": "engine.type"}
    config: CotConfig

    def __init__(self, config: CotConfig) -> None:
        super().__init__(config)
        library = TemplateLibrary.load(config.template_files)
        self.template = library.get(config.prompt)
        if self.template.family != "cot":
            raise ConfigError(
                f"prompt: template {config.prompt!r} is a {self.template.family} template; the cot stage "
                f"needs a `family: cot` template (shipped: {[t.id for t in library.family('cot')]})"
            )
        self.digest = library.digest

    def fingerprint(self) -> str:
        return self.generation_key()

    def generation_key(self) -> str:
        return self.config.generation_key(self.digest)

    def chunk_dir(self, ctx: StageContext) -> str | Path:
        """Where this config's finished results are kept (created; other configs' results removed): a
        local folder or a URI, the run's own by default (on object storage too: each chunk is one PUT)."""
        root = self.config.chunk_dir or storage.join(ctx.out_dir, CHUNKS_DIR, ctx.stage_dir)
        return chunks.prepare(root, self.generation_key())

    def apply(self, ds: ray.data.Dataset, ctx: StageContext) -> ray.data.Dataset:
        if ctx.kind != "sft":
            raise AloeError(f"the cot stage generates answers for sft rows, not {ctx.kind} rows")
        check_model_dir(self.config.engine.model)  # fail here, not in every actor
        config = self.config
        _check_cpus_left(config, ctx.cluster_cpus)
        return ds.map_batches(
            CotActor,
            fn_constructor_kwargs={
                "config": config,
                "template": self.template,
                "chunk_dir": str(self.chunk_dir(ctx)),
            },
            batch_size=config.batch_size,
            batch_format="pyarrow",
            concurrency=config.concurrency,
            num_gpus=config.num_gpus,
            num_cpus=config.cpus_per_actor,
        )


def _check_cpus_left(config: CotConfig, cluster_cpus: int) -> None:
    """Refuse an actor pool that takes every CPU of a local Ray: reading and writing rows need CPUs too,
    so such a job waits forever. (On a cluster, ``RAY_ADDRESS``, nodes may still join: only warn.)"""
    most = config.concurrency if isinstance(config.concurrency, int) else config.concurrency[1]
    if most * config.cpus_per_actor < cluster_cpus:
        return
    message = (
        f"cot: concurrency {most} x cpus_per_actor {config.cpus_per_actor:g} takes all {cluster_cpus} CPUs "
        "of the Ray cluster, leaving none to read and write rows, so the job would stall; lower "
        "cpus_per_actor (e.g. 0.5) or concurrency"
    )
    if os.environ.get("RAY_ADDRESS"):
        logger.warning(message)
        return
    raise ConfigError(message)
