"""aloe_core.storage on a local folder and on a real S3 endpoint (moto's server on 127.0.0.1): the same
calls, the same answers; plus the object-storage commit rule's cleanup and shard resolution."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aloe_core import storage
from aloe_core.atomic import atomic_write_json, remove_debris, upload_dir
from aloe_core.errors import InputError
from aloe_core.manifest import Manifest
from aloe_core.shards import resolve_inputs


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_bucket") + "/root"


def test_write_list_read_remove(root):
    storage.put_object(storage.join(root, "a", "one.parquet"), b"1")
    storage.put_object(storage.join(root, "a", "two.txt"), b"22")
    atomic_write_json(storage.join(root, "a", "m.json"), {"k": [1, 2]})
    storage.put_object(storage.join(root, "b", "deep", "x.parquet"), b"3")

    assert storage.is_dir(storage.join(root, "a")) and storage.is_file(storage.join(root, "a", "two.txt"))
    assert not storage.exists(storage.join(root, "missing"))
    assert storage.list_files(storage.join(root, "a")) == [
        storage.join(root, "a", n) for n in ("m.json", "one.parquet", "two.txt")
    ]
    assert storage.list_files(storage.join(root, "a"), "*.parquet") == [
        storage.join(root, "a", "one.parquet")
    ]
    assert storage.glob(storage.join(root, "a", "*.txt")) == [storage.join(root, "a", "two.txt")]
    assert storage.list_folders(root) == [storage.join(root, "a"), storage.join(root, "b")]
    assert storage.list_files(storage.join(root, "nothing")) == []
    assert json.loads(storage.read_text(storage.join(root, "a", "m.json"))) == {"k": [1, 2]}
    assert storage.name_of(storage.join(root, "a", "two.txt")) == "two.txt"

    storage.put_object(storage.join(root, "a", "two.txt"), b"new")  # a rewrite replaces the object whole
    assert storage.read_bytes(storage.join(root, "a", "two.txt")) == b"new"
    storage.remove(storage.join(root, "a", "two.txt"))
    storage.remove(storage.join(root, "b"))
    storage.remove(storage.join(root, "never-there"))
    assert not storage.exists(storage.join(root, "a", "two.txt")) and not storage.exists(
        storage.join(root, "b")
    )
    assert storage.list_folders(root) == [storage.join(root, "a")]


def test_parquet_through_for_arrow(root):
    table = pa.table({"id": ["a", "b"], "messages": [[], []]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    storage.put_object(storage.join(root, "t.parquet"), sink.getvalue().to_pybytes())
    where, fs = storage.for_arrow(storage.join(root, "t.parquet"))
    assert pq.read_table(where, filesystem=fs).equals(table)
    assert (fs is None) == (not storage.is_uri(root))


def test_a_run_on_object_storage_is_read_through_its_manifest(s3_bucket):
    """Readers trust the attempt the manifest names; attempts it does not list are removed."""
    run = s3_bucket + "/run"
    table = pa.table({"id": ["x"], "task": ["qa"], "messages": [[{"role": "user", "content": "hi"}]]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    for attempt in ("attempt-good", "attempt-stale"):
        storage.put_object(f"{run}/01-ingest/{attempt}/part-00000-0000.parquet", sink.getvalue().to_pybytes())
    storage.put_object(f"{run}/attempt-orphan/part.parquet", b"x")
    manifest = Manifest(run, {"kind": "sft", "stages": {}})
    manifest.record(
        "01-ingest", {"key": "k", "attempt": "attempt-good", "files": {"part-00000-0000.parquet": {}}}
    )

    assert remove_debris(run) == []  # nothing is written under temporary names on object storage
    assert sorted(manifest.remove_unlisted_attempts()) == [
        f"{run}/01-ingest/attempt-stale",
        f"{run}/attempt-orphan",
    ]
    assert storage.list_folders(f"{run}/01-ingest") == [f"{run}/01-ingest/attempt-good"]
    source = resolve_inputs(run, kind="sft")
    assert source.files == [f"{run}/01-ingest/attempt-good/part-00000-0000.parquet"]
    assert source.kind == "sft" and manifest.finished("01-ingest", "k") is not None


def test_filesystems_sent_to_workers_carry_no_key(s3_bucket, s3_endpoint):
    fs, _ = storage.resolve(s3_bucket + "/x")
    assert s3_endpoint["AWS_SECRET_ACCESS_KEY"].encode() not in pickle.dumps(fs)


def test_uri_wildcards_only_in_the_last_part(s3_bucket):
    with pytest.raises(InputError, match=r"wildcards in a URI only in its last part"):
        storage.glob(s3_bucket + "/*/part.parquet")


def test_local_paths_keep_their_pathlib_form(tmp_path):
    assert storage.join(tmp_path, "a", "b") == str(tmp_path / "a" / "b")
    assert storage.location("s3://b/run") == "s3://b/run" and storage.location("run") == type(tmp_path)("run")


def test_upload_dir_puts_the_marker_last_and_drops_what_the_new_folder_lacks(s3_bucket, tmp_path):
    """An exported model on a URI: every file one object, config.json (the file readers check) last."""
    target = s3_bucket + "/out/model"
    old = tmp_path / "old"
    for name, data in {
        "config.json": b"{}",
        "model-1-of-2.safetensors": b"a",
        "tok/vocab.json": b"v",
    }.items():
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_bytes(data)
    assert upload_dir(old, target, last="config.json") == target
    new = tmp_path / "new"
    new.mkdir()
    (new / "config.json").write_bytes(b'{"new": 1}')
    (new / "model.safetensors").write_bytes(b"b" * 100)

    order = []
    put = storage.upload_file

    def recording(local, path):
        order.append(storage.name_of(path))
        put(local, path)

    with pytest.MonkeyPatch.context() as patch:  # records the order only; the real upload runs
        patch.setattr(storage, "upload_file", recording)
        upload_dir(new, target, last="config.json")
    assert order == ["model.safetensors", "config.json"]
    _, inner = storage.resolve(target)
    assert [i.path.removeprefix(inner + "/") for i in storage.list_tree(target)] == [
        "config.json",
        "model.safetensors",
    ]
    assert storage.read_bytes(target + "/config.json") == b'{"new": 1}'
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        upload_dir(tmp_path / "old" / "tok", target, last="config.json")


def test_local_copy_downloads_a_uri_folder_once_and_again_when_it_changes(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    folder = s3_bucket + "/models/m"
    storage.put_object(folder + "/config.json", b"{}")
    storage.put_object(folder + "/sub/tokenizer.json", b"tok")
    assert storage.local_copy(tmp_path / "here") == str(tmp_path / "here")  # local paths as given

    first = Path(storage.local_copy(folder))
    assert first.parent == tmp_path / "cache" / "uri" and first.name.startswith("m-")
    assert (first / "config.json").read_bytes() == b"{}"
    assert (first / "sub" / "tokenizer.json").read_bytes() == b"tok"
    assert storage.local_copy(folder) == str(first)  # unchanged: the same copy, nothing downloaded
    storage.put_object(folder + "/config.json", b'{"v": 2}')
    second = Path(storage.local_copy(folder))
    assert second != first and (second / "config.json").read_bytes() == b'{"v": 2}'
    assert [p.name for p in (tmp_path / "cache" / "uri").iterdir() if p.name.startswith(".")] == []
    with pytest.raises(InputError, match="no file under this URI"):
        storage.local_copy(s3_bucket + "/models/none")


def test_local_copy_racing_another_process_uses_the_copy_that_landed_first(s3_bucket, tmp_path, monkeypatch):
    # Two actors of one node fetch the same model at once: the one that finishes second keeps nothing of
    # its own download and returns the first one's copy, whole; no staging folder is left.
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    folder = s3_bucket + "/models/m"
    storage.put_object(folder + "/config.json", b"{}")
    storage.put_object(folder + "/model.safetensors", b"weights")
    real, winner = storage.download_folder, []

    def download_while_another_wins(path, local, **kwargs):
        if not winner:  # the other process downloads and renames its copy into place meanwhile
            winner.append(True)
            winner.append(storage.local_copy(folder))
        return real(path, local, **kwargs)

    monkeypatch.setattr(storage, "download_folder", download_while_another_wins)
    assert storage.local_copy(folder) == winner[1]
    assert sorted(p.name for p in Path(winner[1]).iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in (tmp_path / "cache" / "uri").iterdir()] == [Path(winner[1]).name]


def test_local_copy_without_weights_is_cached_apart_from_the_whole_copy(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    folder = s3_bucket + "/models/m"
    storage.put_object(folder + "/config.json", b"{}")
    storage.put_object(folder + "/model.safetensors", b"weights")
    light = Path(storage.local_copy(folder, exclude=("*.safetensors",)))
    whole = Path(storage.local_copy(folder))
    assert light != whole
    assert [p.name for p in light.iterdir()] == ["config.json"]
    assert sorted(p.name for p in whole.iterdir()) == ["config.json", "model.safetensors"]
