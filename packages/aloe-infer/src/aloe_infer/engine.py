"""The generation engine interface: one API over transformers and vLLM.

A caller builds an :class:`EngineConfig` (usually from YAML), calls :func:`load_engine`, then
:meth:`Engine.generate` (text or token-id prompts) or :meth:`Engine.chat` (message lists rendered with
the model's chat template). Both return one :class:`~aloe_infer.sampling.GenerationResult` per prompt,
in order.

What the base class guarantees for every engine:

* prompts are tokenized here, by the model's own Hugging Face tokenizer, so both engines see the same
  token ids (chat prompts: ``apply_chat_template``; text prompts: ``tokenizer(text)`` with special
  tokens, as vLLM does);
* a prompt that cannot run (empty, or not shorter than ``max_model_len``) gets ``error`` set and never
  reaches the engine; ``max_tokens`` is clipped so prompt + generation fit ``max_model_len``;
* if a batch raises, each request is retried alone, so one bad request costs only its own row; errors
  :meth:`Engine.is_fatal` calls fatal (after which the engine cannot be trusted) propagate.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from aloe_core import storage
from aloe_core.config import StrictModel
from aloe_core.errors import AloeError, InputError
from aloe_infer.sampling import GenerationResult, SamplingParams

logger = logging.getLogger(__name__)

Prompt = str | Sequence[int]
Message = Mapping[str, str]


class EngineConfig(StrictModel):
    """Which engine serves which model, and how. Fields marked (vllm) or (hf) only affect that engine."""

    type: Literal["hf", "vllm"] = "hf"
    model: str = Field(min_length=1)  # a Hugging Face model folder: a local path or an s3:// / gs:// URI
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    max_model_len: int | None = Field(None, ge=16)  # prompt + generation; default: the model's own
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda if visible, else cpu
    seed: int = Field(0, ge=0)  # for requests without their own seed
    trust_remote_code: bool = False
    env: dict[str, str] = Field(default_factory=dict)  # environment variables set before loading
    tensor_parallel_size: int = Field(1, ge=1)  # (vllm) GPUs one engine spans
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # (vllm) share of memory for weights + cache
    enforce_eager: bool = False  # (vllm) skip CUDA graphs / torch.compile (faster start, slower decode)
    vllm_args: dict[str, Any] = Field(default_factory=dict)  # (vllm) any other vllm.LLM argument
    max_batch_size: int = Field(64, ge=1)  # (hf) sequences decoded together
    max_batch_tokens: int = Field(65536, ge=1)  # (hf) padded prompt + generation tokens per batch

    @model_validator(mode="after")
    def _tensor_parallel_needs_vllm(self) -> EngineConfig:
        if self.type == "hf" and self.tensor_parallel_size > 1:
            raise ValueError("tensor_parallel_size > 1 needs `type: vllm` (the hf engine runs on one device)")
        return self


# Weight files: a process that only tokenizes (an eval's or safety run's driver) copies a URI model
# without them, so on a cluster only the nodes that load the model download its weights.
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")


def check_model_dir(path: str | Path) -> str | Path:
    """``path`` (a Path if local) if it is a model folder; raises InputError naming what is missing.

    A URI is checked on the store (its ``config.json`` is there) and nothing is downloaded: the processes
    that load the model fetch it (:func:`model_files`), so a driver fails fast on a typo either way.
    """
    if storage.is_uri(path):
        if not storage.is_file(storage.join(path, "config.json")):
            raise InputError(f"{path}: not a Hugging Face model folder (no config.json under this URI)")
        return str(path)
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: model folder not found (give a local folder or an s3:// or gs:// URI)")
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model folder (no config.json)")
    return path


def model_files(path: str | Path, *, weights: bool = True) -> Path:
    """The local folder to open the model ``path`` from (transformers and vLLM read local files only):
    a local path itself; a URI's copy in this machine's cache (:func:`aloe_core.storage.local_copy`),
    downloaded by the first process on the node that asks (each Ray node fills its own; actors racing
    on one node share the copy that lands first). ``weights=False`` leaves out :data:`WEIGHT_FILES`,
    for a process that needs only the tokenizer and config.json (the same bytes the engine reads).

    Raises:
        InputError: ``path`` is not a model folder.
    """
    check_model_dir(path)
    local = storage.local_copy(path, exclude=() if weights else WEIGHT_FILES)
    return Path(check_model_dir(local))


def first_stop(text: str, stops: Sequence[str]) -> tuple[int, str] | None:
    """``(index, stop)`` of the earliest stop string in ``text`` (longest wins a tie), or None."""
    best: tuple[int, str] | None = None
    for stop in stops:
        index = text.find(stop)
        if index >= 0 and (
            best is None or index < best[0] or (index == best[0] and len(stop) > len(best[1]))
        ):
            best = (index, stop)
    return best


class Engine(ABC):
    """A loaded model that generates; see the module docstring for what every engine guarantees.

    Subclasses set ``tokenizer`` (a Hugging Face tokenizer) and ``max_model_len`` and implement
    :meth:`_generate` for prompts that already passed the checks here.
    """

    name: str = "engine"
    tokenizer: Any
    max_model_len: int

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    # -- prompts -------------------------------------------------------------------------------------

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a text prompt (with the tokenizer's special tokens), or the ids as given."""
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        return [int(t) for t in prompt]

    def encode_chat(self, messages: Sequence[Message], *, continue_final_message: bool = False) -> list[int]:
        """Token ids of a conversation rendered with the model's chat template.

        With ``continue_final_message`` the last message (an assistant prefix) is left open, so the
        model continues it; otherwise the assistant header is appended (generation prompt).

        Raises:
            AloeError: the tokenizer has no chat template.
        """
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise AloeError(f"{self.config.model}: the tokenizer has no chat template; use generate()")
        encoded = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages],
            add_generation_prompt=not continue_final_message,
            continue_final_message=continue_final_message,
            tokenize=True,
            return_dict=True,
        )
        return list(encoded["input_ids"])

    def _prompt_problem(self, ids: Sequence[int]) -> str | None:
        if not ids:
            return "empty prompt"
        if len(ids) >= self.max_model_len:
            return (
                f"prompt has {len(ids)} tokens but max_model_len is {self.max_model_len}; shorten the "
                "prompt or raise the engine's max_model_len"
            )
        return None

    # -- generation ----------------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams | Sequence[SamplingParams]
    ) -> list[GenerationResult]:
        """One result per prompt, in order; row-level problems are in ``result.error``.

        ``params`` is one :class:`SamplingParams` for all prompts or one per prompt (e.g. per-row seeds).
        """
        params_list = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(params_list) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(params_list)} sampling params")
        results: list[GenerationResult | None] = [None] * len(prompts)
        todo: list[int] = []
        ids: list[list[int]] = []
        for i, prompt in enumerate(prompts):
            try:
                ids.append(self.encode(prompt))
            except Exception as exc:  # a prompt the tokenizer rejects costs only its own row
                ids.append([])
                results[i] = GenerationResult((), error=f"tokenizer: {type(exc).__name__}: {exc}")
                continue
            problem = self._prompt_problem(ids[i])
            if problem is not None:
                results[i] = GenerationResult(tuple(ids[i]), error=problem)
                continue
            room = self.max_model_len - len(ids[i])
            if params_list[i].max_tokens > room:
                params_list[i] = params_list[i].model_copy(update={"max_tokens": room})
            todo.append(i)
        done = self._generate_isolating([ids[i] for i in todo], [params_list[i] for i in todo])
        for i, result in zip(todo, done, strict=True):
            results[i] = result
        return results  # type: ignore[return-value]

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        params: SamplingParams | Sequence[SamplingParams],
        *,
        continue_final_message: bool = False,
    ) -> list[GenerationResult]:
        """:meth:`generate` over conversations rendered by :meth:`encode_chat`."""
        prompts = [self.encode_chat(c, continue_final_message=continue_final_message) for c in conversations]
        return self.generate(prompts, params)

    def _generate_isolating(
        self, prompts: list[list[int]], params: list[SamplingParams]
    ) -> list[GenerationResult]:
        if not prompts:
            return []
        try:
            return self._generate(prompts, params)
        except Exception as exc:
            if self.is_fatal(exc):
                raise
            if len(prompts) == 1:
                logger.warning("%s: request failed: %s: %s", self.name, type(exc).__name__, exc)
                return [GenerationResult(tuple(prompts[0]), error=f"{type(exc).__name__}: {exc}")]
            logger.warning("%s: batch of %d failed (%s); retrying one by one", self.name, len(prompts), exc)
        out: list[GenerationResult] = []
        for prompt, param in zip(prompts, params, strict=True):
            out += self._generate_isolating([prompt], [param])
        return out

    @abstractmethod
    def _generate(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[GenerationResult]:
        """Generate for prompts that fit ``max_model_len`` (with ``max_tokens`` already clipped)."""

    def is_fatal(self, exc: BaseException) -> bool:
        """True if the engine cannot be used after ``exc``: rows are not retried one by one, ``exc``
        propagates."""
        return False

    def needs_restart(self, exc: BaseException) -> bool:
        """True if ``exc`` means the engine is gone and only a new process can bring it back (a dead
        vLLM engine core); a Ray actor holding the engine should then exit so Ray restarts it."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Release the model (and any engine processes). The engine is unusable afterwards."""


def load_engine(config: EngineConfig, *, llm: Any = None) -> Engine:
    """The engine ``config`` names, loaded. ``llm`` wraps an existing ``vllm.LLM`` (tests share one).

    A model on a URI is fetched here, in the process that loads it (:func:`model_files`).

    Raises:
        InputError: the model folder is missing. MissingExtraError: vllm is not installed.
    """
    for key, value in config.env.items():
        os.environ[key] = value
    if config.type == "vllm":
        from aloe_infer.vllm_engine import VllmEngine

        return VllmEngine(config, llm=llm)
    from aloe_infer.hf_engine import HFEngine

    return HFEngine(config)
