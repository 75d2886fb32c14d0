"""`aloe train merge` and `aloe train card` on a real S3 endpoint on 127.0.0.1 (moto's server mode): a
merge from models on the bucket into the bucket writes the weights a local merge writes, bit for bit; a
rerun does no work and says so in one line, as locally; an upload cut off before its `config.json`
is merged again; a card is rewritten on the bucket as it is in a local copy of the folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from aloe_core import storage
from aloe_core.atomic import upload_dir
from aloe_train.cards import CARD, FACTS
from aloe_train.cli import card as card_command
from aloe_train.merge.cli import main as merge_main

WEIGHTS = "model.safetensors"
RECIPE = "mergekit_config.yml"


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """This test's own $TMPDIR and model cache, to check that the merge leaves nothing in either."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("ALOE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp


def _fine_tune(base: Path, folder: Path) -> Path:
    """A copy of ``base`` with every weight moved a little (seeded): a stand-in fine-tune."""
    shutil.copytree(base, folder)
    generator = torch.Generator().manual_seed(3)
    tensors = load_file(folder / WEIGHTS)
    save_file(
        {k: v + 0.02 * torch.randn(v.shape, generator=generator) for k, v in tensors.items()},
        folder / WEIGHTS,
        metadata={"format": "pt"},
    )
    return folder


def _recipe(tmp_path: Path, name: str, base: str, tuned: str) -> Path:
    recipe = {
        "merge_method": "dare_ties",
        "base_model": base,
        "models": [{"model": tuned, "parameters": {"weight": 0.6, "density": 0.5}}],
        "dtype": "float32",
        "random_seed": 0,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _objects(root: str) -> dict[str, tuple[int, int]]:
    _, inner = storage.resolve(root)
    return {i.path.removeprefix(inner + "/"): (i.size, i.mtime_ns) for i in storage.list_tree(root)}


def test_merge_from_and_into_the_bucket_equals_a_local_merge_and_a_rerun_does_no_work(
    s3_bucket, tiny_model_dir, scratch, tmp_path, capsys
):
    tuned = _fine_tune(tiny_model_dir, tmp_path / "tuned")
    local = tmp_path / "merged"
    merge_main([str(_recipe(tmp_path, "local", str(tiny_model_dir), str(tuned))), "-o", str(local)])
    base_uri = upload_dir(tiny_model_dir, s3_bucket + "/models/base", last="config.json")
    tuned_uri = upload_dir(tuned, s3_bucket + "/models/tuned", last="config.json")
    out = s3_bucket + "/models/merged"
    config = str(_recipe(tmp_path, "remote", base_uri, tuned_uri))
    capsys.readouterr()

    merge_main([config, "-o", out])
    assert f"model: {out}" in capsys.readouterr().out
    names = sorted(p.name for p in local.iterdir())
    assert sorted(_objects(out)) == names
    for name in names:
        if name not in (CARD, FACTS, RECIPE):  # these name the inputs: URIs here, local folders there
            assert storage.read_bytes(f"{out}/{name}") == (local / name).read_bytes(), name
    card = storage.read_text(f"{out}/{CARD}")
    assert f"`{base_uri}`" in card and f"`{tuned_uri}`" in card
    assert json.loads(storage.read_text(f"{out}/{FACTS}"))["base_model"] == base_uri
    assert list(scratch.glob("aloe-*")) == []  # the scratch build was removed after the upload

    # A rerun finds the committed model (config.json) and stops before any work, as a local rerun does.
    before, copies = _objects(out), sorted((tmp_path / "cache" / "uri").iterdir())
    with pytest.raises(SystemExit) as info:
        merge_main([config, "-o", out])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f"aloe: error: {out}: folder is not empty; pass --force (overwrite=True) to replace it\n"
    )
    assert _objects(out) == before and sorted((tmp_path / "cache" / "uri").iterdir()) == copies

    # An upload cut off before its commit (no config.json) is no model: the rerun merges it again.
    storage.remove(f"{out}/config.json")
    storage.remove(f"{out}/{WEIGHTS}")
    merge_main([config, "-o", out])
    assert storage.read_bytes(f"{out}/{WEIGHTS}") == (local / WEIGHTS).read_bytes()
    assert sorted(_objects(out)) == names
    assert sorted((tmp_path / "cache" / "uri").iterdir()) == copies  # the inputs' copies were reused


def test_card_of_a_model_on_the_bucket_is_rewritten_there_like_a_local_copy(
    s3_bucket, tiny_model_dir, tmp_path
):
    tuned = _fine_tune(tiny_model_dir, tmp_path / "tuned")
    exported = tmp_path / "merged"
    merge_main([str(_recipe(tmp_path, "local", str(tiny_model_dir), str(tuned))), "-o", str(exported)])
    model = upload_dir(exported, s3_bucket + "/models/merged", last="config.json")
    weights = _objects(model)[WEIGHTS]

    card_command(model, kind="merge", eval_results=None, license="apache-2.0")
    card_command(str(exported), kind="merge", eval_results=None, license="apache-2.0")
    assert storage.read_text(f"{model}/{CARD}") == (exported / CARD).read_text()
    assert storage.read_text(f"{model}/{CARD}").startswith("---\nlicense: apache-2.0")
    assert json.loads(storage.read_text(f"{model}/{FACTS}")) == json.loads((exported / FACTS).read_text())
    assert _objects(model)[WEIGHTS] == weights  # only the card and its facts were put


def test_card_of_a_uri_without_aloe_card_json_is_a_one_line_error(s3_bucket):
    from aloe_core.errors import InputError

    with pytest.raises(InputError, match=r"^s3://[^ ]+/models/none: no aloe_card\.json; not a model folder"):
        card_command(s3_bucket + "/models/none", kind="sft", eval_results=None, license=None)
