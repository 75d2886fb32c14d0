"""Fixtures of the data tests: the smallest sample corpus and the fastest pipeline run over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from aloe_fixtures.corpus import write_sample


@pytest.fixture(scope="session")
def tiny_sample(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny")
    write_sample(directory, rows=300, seed=5)  # every layout, planted defects (malformed rows, PII, ...)
    return directory


@pytest.fixture(scope="session")
def tiny_run(tiny_sample, tmp_path_factory) -> Path:
    """ingest + clean of :func:`tiny_sample` (sft, 244 rows), in process: no Ray, ~3 s."""
    from aloe_core.config import validate_config
    from aloe_data.pipeline.config import PipelineConfig
    from aloe_data.pipeline.runner import run_pipeline
    from aloe_fixtures.demo import sample_pipeline

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    raw = sample_pipeline(tiny_sample, "sft", stages=[{"type": "clean"}]) | {"report": False}
    run_pipeline(validate_config(PipelineConfig, raw), out)
    return out
