"""``write_release``: a pipeline run's final shards -> a versioned, checksummed, documented release.

Two passes over the run's last stage: the split is decided from ``id``/``source``/``task`` alone, then
each input file is read once, its rows routed to the train or validation writer and counted. Everything
is built in a hidden staging sibling of the target folder and renamed into place last, so a release
folder is either complete or absent; a folder that holds a release is never written again.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from aloe_core.atomic import is_debris, remove_debris, staging_dir
from aloe_core.errors import InputError
from aloe_core.manifest import MANIFEST, Manifest
from aloe_core.schemas import schema_for
from aloe_core.shards import RELEASE_MANIFEST, resolve_inputs
from aloe_data.pipeline.report import funnel
from aloe_data.release.card import citation, dataset_card, rai_texts
from aloe_data.release.config import ReleaseConfig, check_name_version
from aloe_data.release.croissant import CROISSANT, build_croissant, write_croissant
from aloe_data.release.licenses import combined_license, source_licenses
from aloe_data.release.provenance import code_version, file_digests
from aloe_data.release.shards import SplitWriter
from aloe_data.release.split import validation_mask
from aloe_data.release.stats import NO_TASK, ReleaseStats, TokenCounter, charts

logger = logging.getLogger("aloe.data.release")
SPLITS = ("train", "validation")


def refuse_existing(out: Path) -> None:
    """Raise unless ``out`` is absent or empty: a release folder is written once, never again."""
    manifest = out / RELEASE_MANIFEST
    if manifest.is_file():
        held = json.loads(manifest.read_text(encoding="utf-8"))
        raise InputError(
            f"{out}: holds release {held.get('name')} {held.get('version')} already; a released version is "
            "never overwritten (write a new version to a new folder)"
        )
    if out.exists() and (not out.is_dir() or any(not is_debris(p.name) for p in out.iterdir())):
        raise InputError(f"{out}: exists and is not empty; a release is written to a new or empty folder")


def _split_masks(files: list[str], seed: int, fraction: float) -> list[Any]:
    """One validation mask per input file (decided over all files together)."""
    tables = [
        pq.read_table(f, columns=[c for c in ("id", "source", "task") if c in pq.read_schema(f).names])
        for f in files
    ]
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    strata = [
        f"{s}\0{k}"
        for t in tables
        for s, k in zip(
            t.column("source").to_pylist(),
            t.column("task").to_pylist() if "task" in t.column_names else [NO_TASK] * t.num_rows,
            strict=True,
        )
    ]
    mask = validation_mask(ids, strata, fraction, seed)
    bounds = [0]
    for t in tables:
        bounds.append(bounds[-1] + t.num_rows)
    return [mask[a:b] for a, b in itertools.pairwise(bounds)]


def _write_data(
    staging: Path, files: list[str], kind: str, config: ReleaseConfig
) -> tuple[dict, ReleaseStats]:
    schema = schema_for(kind)
    writers = {s: SplitWriter(staging, s, schema, config.shard_bytes, config.shard_rows) for s in SPLITS}
    stats = ReleaseStats(TokenCounter(config.tokenizer))
    for path, mask in zip(files, _split_masks(files, config.seed, config.validation_fraction), strict=True):
        table = pq.read_table(path)
        for split, rows in (("train", table.filter(~mask)), ("validation", table.filter(mask))):
            writers[split].add(rows)
            stats.add(split, rows)
        logger.info("release: %s read (%d rows)", path, table.num_rows)
    split_files = {s: w.close() for s, w in writers.items()}
    return {s: f for s, f in split_files.items() if f}, stats


def _facts(
    name: str,
    version: str,
    config: ReleaseConfig,
    run: dict[str, Any],
    manifest: Manifest,
    kind: str,
    split_files: dict,
    stats: ReleaseStats,
) -> dict[str, Any]:
    sources = [s["name"] for s in manifest.data.get("config", {}).get("sources", [])]
    licenses = source_licenses(sources, config.licenses, config.default_license)
    unknown = sorted(set(config.licenses) - set(sources))
    if unknown:
        raise InputError(f"licenses: {unknown} name no source of the run (its sources: {sources})")
    stage_entries = list(manifest.stages.values())
    counters: dict[str, int] = {}
    for entry in stage_entries:
        for key, value in (entry.get("counters") or {}).items():
            counters[key] = counters.get(key, 0) + value
    stats_dict = stats.as_dict()
    return {
        "name": name,
        "version": version,
        "config": config,
        "kind": kind,
        "schema": schema_for(kind),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "run": run,
        "sources": licenses,
        "license": combined_license(licenses.values()),
        "splits": split_files,
        "stats": stats_dict,
        "rows": sum(v["rows"] for v in stats_dict["splits"].values()),
        "funnel": funnel(manifest),
        "counters": counters,
        "code_version": code_version(),
    }


def _write_docs(staging: Path, facts: dict[str, Any], manifest_bytes: bytes, pipeline: dict) -> None:
    (staging / "stats").mkdir()
    (staging / "stats" / "stats.json").write_text(json.dumps(facts["stats"], indent=2) + "\n")
    for file_name, png in charts(facts["stats"], facts["funnel"]).items():
        (staging / "stats" / file_name).write_bytes(png)
    (staging / "provenance").mkdir()
    (staging / "provenance" / "run_manifest.json").write_bytes(manifest_bytes)
    (staging / "provenance" / "pipeline_config.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (staging / "provenance" / "release_config.yaml").write_text(
        yaml.safe_dump(facts["config"].model_dump(mode="json"), sort_keys=False)
    )
    (staging / "README.md").write_text(dataset_card(facts), encoding="utf-8")
    document = build_croissant(
        name=facts["name"],
        version=facts["version"],
        date=facts["date"],
        description=facts["config"].description
        or f"{facts['name']}: {facts['kind']} records for medical language models, made with aloe.",
        license_id=facts["license"],
        citation=citation(facts),
        url=facts["config"].homepage or "https://arxiv.org/abs/2405.01886",
        schema=facts["schema"],
        split_files=facts["splits"],
        rai=rai_texts(facts),
        language=list(facts["config"].language),
        keywords=list(facts["config"].tags),
    )
    write_croissant(staging / CROISSANT, document)


def _release_manifest(staging: Path, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": facts["name"],
        "version": facts["version"],
        "kind": facts["kind"],
        "date": facts["date"],
        "license": facts["license"],
        "source_licenses": facts["sources"],
        "splits": {
            s: {"rows": facts["stats"]["splits"][s]["rows"], "files": sorted(f)}
            for s, f in facts["splits"].items()
        },
        "run": facts["run"],
        "code_version": facts["code_version"],
        "files": file_digests(staging, skip={RELEASE_MANIFEST}),
    }


def _publish_new(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out`` without ever replacing a release (rename refuses a non-empty target)."""
    for root, _dirs, names in os.walk(staging):  # mkdtemp made it 0700: readable like other outputs
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)
    if out.is_dir():
        out.rmdir()  # empty (checked): rename onto it
    staging.rename(out)


def write_release(
    run_dir: Path,
    out: Path,
    *,
    name: str,
    version: str,
    config: ReleaseConfig | None = None,
) -> Path:
    """Write the release ``name`` ``version`` of pipeline run ``run_dir`` into the new folder ``out``.

    ``out`` gets ``README.md`` (dataset card), ``data/{train,validation}-NNNNN-of-NNNNN.parquet``,
    ``stats/`` (``stats.json``, ``funnel.png``, ``lengths.png``, ``scores.png`` when scored),
    ``provenance/`` (the run's manifest and pipeline config, this release's config), ``croissant.json``
    and ``release.json`` (name, version, splits, sha256 of every file). With ``config.hub_repo`` the folder
    is then uploaded (HF_TOKEN needed, checked first). Returns ``out``.

    Raises:
        InputError: bad name or version, ``out`` holds a release or other files, ``run_dir`` is not a
            finished pipeline run, ``licenses`` names an unknown source, or a Hub upload lacks HF_TOKEN.
    """
    from aloe_data.release.hub import upload_release

    config = config or ReleaseConfig()
    check_name_version(name, version)
    run_dir, out = Path(run_dir), Path(out)
    if config.hub_repo and not os.environ.get("HF_TOKEN"):
        raise InputError(f"hub_repo {config.hub_repo}: set HF_TOKEN to upload (nothing written)")
    remove_debris(out)  # staging folders of a killed earlier attempt
    refuse_existing(out)
    if not (run_dir / MANIFEST).is_file():
        raise InputError(f"{run_dir}: no {MANIFEST}; a release is made from a pipeline run (aloe data run)")
    source = resolve_inputs(run_dir)
    manifest = Manifest.load(run_dir)
    kind = manifest.data.get("kind") or "sft"
    staging = staging_dir(out)
    try:
        split_files, stats = _write_data(staging, source.files, kind, config)
        run = {"path": str(run_dir), **{k: source.provenance.get(k) for k in ("stage", "stage_key", "rows")}}
        facts = _facts(name, version, config, run, manifest, kind, split_files, stats)
        _write_docs(staging, facts, (run_dir / MANIFEST).read_bytes(), manifest.data.get("config", {}))
        release = _release_manifest(staging, facts)
        (staging / RELEASE_MANIFEST).write_text(json.dumps(release, indent=2) + "\n", encoding="utf-8")
        _publish_new(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("release %s %s: %s", name, version, out)
    if config.hub_repo:
        upload_release(out, config.hub_repo, version, private=config.hub_private)
    return out
