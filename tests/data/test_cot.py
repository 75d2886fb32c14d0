"""Chain-of-thought generation with the transformers engine on the tiny model.

The tiny model is random, so its reasoning is gibberish and almost never states an answer; with answer
forcing it then picks one of the option letters, which verification accepts only when it is the
reference. Two-option rows make that happen for some rows within three attempts, so the tests see
both outcomes through the real stage and check each row against the rules: kept rows end in the
reference's answer line, dropped rows record every failed attempt, no row is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cot_rows import mcqa_row

from aloe_core import storage
from aloe_core.config import validate_config
from aloe_core.errors import ConfigError
from aloe_core.schemas import dumps_meta, loads_meta, to_table
from aloe_data.cot.actor import CotActor
from aloe_data.cot.chunks import ChunkStore, chunk_name, chunk_worker, prepare
from aloe_data.cot.generate import CotGenerator, _without_dangling_prefix, attempt_seed
from aloe_data.pipeline.single import run_stage_on_files
from aloe_data.pipeline.stage import StageContext
from aloe_data.stages.cot import CotConfig, CotStage
from aloe_infer.engine import load_engine

MAX_MODEL_LEN = 512


def rows_for_test() -> list[dict]:
    rows = [mcqa_row(i, ["yes", "no"], "AB"[i % 2]) for i in range(10)]
    rows += [mcqa_row(10 + i, ["Metformin", "Insulin", "Aspirin", "Statin"], "ABCD"[i]) for i in range(2)]
    return rows


def cot_config(model_dir: Path, **overrides) -> CotConfig:
    raw = {
        "engine": {"type": "hf", "model": str(model_dir), "max_model_len": MAX_MODEL_LEN},
        "sampling": {"max_tokens": 24, "temperature": 1.0},
        "max_retries": 2,
        "min_words": 3,
        "batch_size": 4,
    }
    return CotConfig.model_validate(raw | overrides)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    # One torch thread, as in a 1-CPU actor: on 2 shared cores a second intra-op thread only spins.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_engine(cot_config(tiny_model_dir).engine)
    torch.set_num_threads(threads)


def check_result(row: dict, result: dict, max_attempts: int) -> None:
    """The rules every result must follow, whatever the model wrote."""
    attempts = result["attempts"]
    seeds = [a["seed"] for a in attempts]
    assert seeds == [attempt_seed(0, row["id"], k) for k in range(len(attempts))]
    assert all(a["outcome"] != "verified" for a in attempts[:-1])  # retries stop at the first success
    reference = row["mcqa"]["answer"]
    for attempt in attempts:
        if attempt["outcome"] == "wrong":
            assert attempt["answer"] not in (None, reference)
        if attempt["outcome"] == "verified":
            assert attempt["answer"] == reference
    if result["status"] == "verified":
        assert attempts[-1]["outcome"] == "verified" and result["answer"] == reference
        assert result["text"].splitlines()[-1] == f"Answer: {reference}"
    else:
        assert result["status"] == "unverified" and len(attempts) == max_attempts
        assert result["answer"] is None


def test_generator_follows_the_attempt_rules_and_ignores_batching(engine, tiny_model_dir):
    config = cot_config(tiny_model_dir)
    generator = CotGenerator(engine, config, CotStage(config).template)
    rows = rows_for_test()
    results = generator.run(rows)
    assert set(results) == {r["id"] for r in rows}
    for row in rows:
        check_result(row, results[row["id"]], max_attempts=3)
    statuses = Counter(r["status"] for r in results.values())
    assert statuses["verified"] >= 1 and statuses["unverified"] >= 1, statuses
    assert any(a["forced"] for r in results.values() for a in r["attempts"])
    # Per-row seeds: the same rows in other batches give the same results (what resume relies on).
    split = generator.run(rows[7:]) | generator.run(rows[:7])
    assert split == results


def test_forcing_replaces_an_unfinished_answer_line():
    assert _without_dangling_prefix("Step one.\n\n**Answer:**", "Answer:") == "Step one."
    assert _without_dangling_prefix("Step one.\nAnswer", "Answer:") == "Step one."
    assert _without_dangling_prefix("Step one.\nAnswer: B", "Answer:") == "Step one.\nAnswer: B"
    assert _without_dangling_prefix("The answer depends on renal function.", "Answer:") == (
        "The answer depends on renal function."
    )


def test_engine_row_error_is_recorded_and_other_rows_go_on(engine, tiny_model_dir):
    config = cot_config(tiny_model_dir, max_retries=0, sampling={"max_tokens": 8, "temperature": 1.0})
    generator = CotGenerator(engine, config, CotStage(config).template)
    long_question = "Describe the pathophysiology of sepsis in detail. " * 80
    rows = [mcqa_row(0, ["yes", "no"], "A"), mcqa_row(1, ["yes", "no"], "B", question=long_question)]
    results = generator.run(rows)
    assert results["r001"]["status"] == "error" and results["r001"]["attempts"] == []
    assert (
        results["r001"]["error"].startswith("prompt has ")
        and "max_model_len is 512" in results["r001"]["error"]
    )
    assert results["r000"]["status"] in ("verified", "unverified") and len(results["r000"]["attempts"]) == 1


@pytest.fixture(params=["local", "s3"])
def chunk_root(request, tmp_path) -> str:
    """A chunk folder on local disk, or a prefix on a real S3 endpoint (moto's server on 127.0.0.1)."""
    if request.param == "local":
        return str(tmp_path / "chunks")
    return request.getfixturevalue("s3_bucket") + "/run/_cot_chunks/06-cot"


def _stamps(root: str) -> dict[str, tuple[int, bytes]]:
    """Each chunk file's modification time and bytes (a rewritten chunk changes both)."""
    return {p: (storage.info(p).mtime_ns, storage.read_bytes(p)) for p in storage.list_files(root, "chunk-*")}


def test_actor_resumes_from_chunks_without_regenerating(engine, tiny_model_dir, chunk_root):
    config = cot_config(tiny_model_dir)
    template = CotStage(config).template
    rows = rows_for_test()
    table = to_table(rows, "sft")
    first = CotActor(config, template, chunk_root, engine=engine)
    first(table.slice(0, 4))  # then the job is "killed"
    stamp = _stamps(chunk_root)
    [done] = stamp
    # A restarted actor, with no engine to start: the resumed batch must not need one.
    resumed = CotActor(config, template, chunk_root)
    again = resumed(table.slice(0, 4))
    assert resumed._engine is None
    assert _stamps(chunk_root) == stamp
    assert again.to_pylist() == first(table.slice(0, 4)).to_pylist()
    resumed._engine = engine
    resumed(table)  # the whole input: only the 8 new rows are generated, as one new chunk
    chunks = _stamps(chunk_root)
    assert len(chunks) == 2 and chunks[done] == stamp[done]
    [new] = [c for c in chunks if c != done]
    ids = pa.BufferReader(chunks[new][1])
    assert sorted(pq.read_table(ids, columns=["id"]).column("id").to_pylist()) == [r["id"] for r in rows[4:]]
    assert len(ChunkStore(chunk_root).get(r["id"] for r in rows)) == len(rows)
    assert not [p for p in storage.list_files(chunk_root) if not storage.name_of(p).startswith("chunk-")]


def test_only_chunks_whose_rows_match_their_name_are_trusted(chunk_root):
    store = ChunkStore(chunk_root)
    whole = store.put({"a": {"x": 1}, "b": {"x": 2}})
    assert storage.name_of(whole) == chunk_name(["b", "a"])
    # A chunk under another batch's name (a partial or foreign file) and one that does not parse.
    storage.put_object(storage.join(chunk_root, chunk_name(["c", "d"])), storage.read_bytes(whole))
    storage.put_object(storage.join(chunk_root, chunk_name(["e"])), b"not parquet")
    assert ChunkStore(chunk_root).get(["a", "b", "c", "d", "e"]) == {"a": {"x": 1}, "b": {"x": 2}}


def test_a_run_on_object_storage_keeps_its_chunks_under_the_run(s3_bucket, tiny_model_dir):
    stage = CotStage(cot_config(tiny_model_dir))
    run = s3_bucket + "/runs/cot"
    ctx = StageContext(kind="sft", out_dir=run, stage_dir="06-cot", cluster_cpus=2)
    where = stage.chunk_dir(ctx)
    assert where == f"{run}/_cot_chunks/06-cot/{stage.generation_key()}"
    ChunkStore(where).put({"a": {"x": 1}})
    other = CotStage(cot_config(tiny_model_dir, seed=9))
    assert other.chunk_dir(ctx) != where and storage.list_files(where) == []  # another config's are gone


def read_output(out: Path) -> tuple[list[dict], list[dict]]:
    kept = [r for f in sorted(out.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    dropped = [r for f in sorted((out / "_dropped").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return kept, dropped


CHAT_ROW = {
    "id": "chat",
    "source": "t",
    "task": "chat",
    "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
    "mcqa": None,
    "meta": dumps_meta({"keep": True}),
}


@pytest.fixture(scope="module")
def stage_run(ray_session, tiny_model_dir, tmp_path_factory):
    """The cot stage over 14 rows in two files: 12 MCQA rows, a chat row, a row too long for the engine."""
    tmp_path = tmp_path_factory.mktemp("cot-stage")
    too_long = mcqa_row(99, ["yes", "no"], "A", question="Explain sepsis in full detail. " * 120)
    inputs = [*rows_for_test(), CHAT_ROW, too_long]
    table = to_table(inputs, "sft")
    (tmp_path / "in").mkdir()
    for part in range(2):  # two files, two blocks: both actors get work
        pq.write_table(table.slice(7 * part, 7), tmp_path / "in" / f"part-{part}.parquet")
    # Two actors of half a CPU each: the other CPU of the 2-CPU test cluster reads and writes rows.
    config = cot_config(tiny_model_dir, concurrency=2, cpus_per_actor=0.5, chunk_dir=str(tmp_path / "chunks"))
    started = time.perf_counter()
    entry = run_stage_on_files(CotStage(config), tmp_path / "in", tmp_path / "out")
    print(f"cot stage, 14 rows, 2 hf actors: {time.perf_counter() - started:.1f}s")
    return tmp_path, inputs, config, entry


@pytest.mark.slow  # generation in Ray actors end to end: CI's second step
def test_cot_stage_end_to_end_through_ray(stage_run, tiny_model_dir):
    tmp_path, inputs, _, entry = stage_run
    kept, dropped = read_output(tmp_path / "out")
    assert Counter(r["id"] for r in kept + dropped) == Counter(r["id"] for r in inputs)  # each row once
    assert entry["rows_in"] == 14 and entry["rows_out"] == len(kept)
    by_id = {r["id"]: r for r in kept + dropped}
    assert by_id["chat"]["messages"] == CHAT_ROW["messages"] and by_id["chat"]["meta"] == CHAT_ROW["meta"]
    assert (
        by_id["r099"]["drop_reason"] == "cot_error" and "max_model_len is 512" in by_id["r099"]["drop_detail"]
    )
    rows = [r for r in inputs if r["mcqa"] is not None and r["id"] != "r099"]
    for row in rows:
        out = by_id[row["id"]]
        cot = loads_meta(out["meta"])["cot"]
        assert (
            cot["model"] == str(tiny_model_dir) and cot["prompt"] == "cot-default" and cot["engine"] == "hf"
        )
        result = {**cot, "text": out["messages"][-1]["content"] if cot["status"] == "verified" else None}
        check_result(row, result, max_attempts=3)
        if cot["status"] == "verified":
            assert out.get("drop_reason") is None and out["messages"][0] == row["messages"][0]
        else:
            assert out["drop_reason"] == "cot_unverified"
            assert out["drop_detail"].startswith("3 attempts: ")
            assert cot["last_output"]
    assert 1 <= sum(r["id"] != "chat" for r in kept) < len(rows)


@pytest.mark.slow
def test_rerun_takes_every_row_from_chunks(stage_run):
    """A rerun (e.g. after the job was killed) regenerates nothing and writes identical output."""
    tmp_path, _, config, entry = stage_run
    chunk_files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "chunks").rglob("*.parquet")}
    again = run_stage_on_files(CotStage(config), tmp_path / "in", tmp_path / "again")
    assert {k: v["sha256"] for k, v in again["files"].items()} == {
        k: v["sha256"] for k, v in entry["files"].items()
    }
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "chunks").rglob("*.parquet")} == chunk_files


@pytest.mark.slow  # generation in Ray actors end to end: CI's second step
def test_killed_actor_is_restarted_and_no_row_is_lost_or_duplicated(ray_session, tiny_model_dir, tmp_path):
    rows = [mcqa_row(i, ["yes", "no"], "AB"[i % 2]) for i in range(24)]
    pq.write_table(to_table(rows, "sft"), tmp_path / "in.parquet")
    config = cot_config(
        tiny_model_dir,
        batch_size=2,
        max_retries=0,
        sampling={"max_tokens": 48, "temperature": 1.0, "ignore_eos": True},
        chunk_dir=str(tmp_path / "chunks"),
    )
    stage = CotStage(config)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["entry"] = run_stage_on_files(stage, tmp_path / "in.parquet", tmp_path / "out")
        except BaseException as exc:  # reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    chunk_dir = tmp_path / "chunks" / stage.generation_key()
    deadline = time.monotonic() + 240
    while not list(chunk_dir.glob("chunk-*.parquet")) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    first = sorted(chunk_dir.glob("chunk-*.parquet"))
    assert first, "no chunk was written"
    victim = int(chunk_worker(first[0]).rsplit(":", 1)[1])
    os.kill(victim, signal.SIGKILL)  # the generation actor dies mid-run
    worker.join(timeout=300)
    assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
    kept, dropped = read_output(tmp_path / "out")
    assert sorted(r["id"] for r in kept + dropped) == sorted(r["id"] for r in rows)
    assert outcome["entry"]["rows_in"] == len(rows)
    writers = {chunk_worker(p) for p in chunk_dir.glob("chunk-*.parquet")}
    assert len(writers) >= 2, writers  # a restarted actor (another process) finished the job
    # Ray retried the killed actor's task from its first batch; the batch finished before the kill
    # came from its chunk and was not generated again (that would have rewritten the file).
    assert chunk_worker(first[0]).endswith(f":{victim}")
    stored = ChunkStore(chunk_dir).get(r["id"] for r in rows)
    assert set(stored) == {r["id"] for r in rows}
    for row in kept + dropped:
        assert loads_meta(row["meta"])["cot"]["attempts"] == stored[row["id"]]["attempts"]


def test_chunk_folders_of_other_configs_are_removed(tmp_path):
    old = prepare(tmp_path, "key-old")
    ChunkStore(old).put({"r1": {"status": "verified"}})
    new = prepare(tmp_path, "key-new")
    assert [p.name for p in tmp_path.iterdir()] == ["key-new"] and new.is_dir()
    store = ChunkStore(new)
    path = store.put({"b": {"x": 2}, "a": {"x": 1}})
    assert pq.read_table(path).to_pylist() == [
        {"id": "a", "result": json.dumps({"x": 1})},
        {"id": "b", "result": json.dumps({"x": 2})},
    ]
    assert chunk_worker(path).endswith(f":{os.getpid()}")
    (new / "chunk-broken.parquet").write_bytes(b"not parquet")
    assert ChunkStore(new).get(["a", "b", "c"]) == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampling": {"temperature": 0.0}}, "every retry would repeat the first attempt"),
        (
            {"engine": {"type": "vllm", "model": "m", "tensor_parallel_size": 4}, "num_gpus": 1},
            r"num_gpus \(1",
        ),
        ({"concurrency": [3, 2]}, "concurrency must be"),
    ],
)
def test_config_errors(overrides, message):
    raw = {"engine": {"type": "hf", "model": "m"}} | overrides
    with pytest.raises(ConfigError, match=message):
        validate_config(CotConfig, raw, "cfg")


def test_prompt_must_be_a_cot_template(tiny_model_dir):
    with pytest.raises(ConfigError, match="is a multiple_choice template"):
        CotStage(cot_config(tiny_model_dir, prompt="mc-plain"))
    with pytest.raises(ConfigError, match="unknown template id 'nope'"):
        CotStage(cot_config(tiny_model_dir, prompt="nope"))


def test_chunk_key_ignores_resources_but_not_generation(tiny_model_dir):
    base = cot_config(tiny_model_dir)
    same = cot_config(tiny_model_dir, concurrency=4, batch_size=16, num_cpus=2)
    assert base.generation_key() == same.generation_key()
    for changed in ({"seed": 1}, {"max_retries": 1}, {"sampling": {"max_tokens": 25, "temperature": 1.0}}):
        assert cot_config(tiny_model_dir, **changed).generation_key() != base.generation_key()


def test_actor_pool_must_leave_a_cpu_for_reading_and_writing(ray_session, tiny_model_dir, tmp_path):
    pq.write_table(to_table(rows_for_test()[:1], "sft"), tmp_path / "in.parquet")
    stage = CotStage(cot_config(tiny_model_dir, concurrency=2))
    with pytest.raises(ConfigError, match=r"concurrency 2 x cpus_per_actor 1 takes all 2 CPUs"):
        run_stage_on_files(stage, tmp_path / "in.parquet", tmp_path / "out")


def test_stage_rejects_preference_rows(ray_session, tiny_model_dir, tmp_path):
    from aloe_core.errors import AloeError

    table = pa.table({"id": ["p"], "source": ["s"], "prompt": [[{"role": "user", "content": "q"}]]})
    table = table.append_column("chosen", pa.array(["a"])).append_column("rejected", pa.array(["b"]))
    table = table.append_column("meta", pa.array(["{}"]))
    pq.write_table(table, tmp_path / "pref.parquet")
    with pytest.raises(AloeError, match="generates answers for sft rows, not preference rows"):
        run_stage_on_files(CotStage(cot_config(tiny_model_dir)), tmp_path / "pref.parquet", tmp_path / "o")
