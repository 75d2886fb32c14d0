"""The KubeRay manifests in infra/kuberay validate against the RayCluster and RayJob CRD schemas of KubeRay
v1.7.0 (vendored in infra/kuberay/crds/), strictly: an unknown or misspelt field fails, as it does under
`kubectl apply --validate=strict`. Beyond the schema: what our files rely on (entrypoints that name real
configs, working_dir and env of the runtime env, GPU groups that ask for GPUs, secrets that exist)."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERAY = REPO_ROOT / "infra" / "kuberay"
MANIFESTS = sorted(p.name for p in KUBERAY.glob("*.yaml"))


def strict(schema: Any) -> Any:
    """The CRD's OpenAPI schema with unknown fields refused (the API server prunes them silently, so a
    misspelt field would otherwise pass). Objects that preserve unknown fields or map to free-form
    values keep them."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {k: strict(v) for k, v in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
    return schema


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The v1 OpenAPI schema of a vendored CRD, made strict (read-only: cached for the session)."""
    text = (KUBERAY / "crds" / f"ray.io_{kind.lower()}s.yaml").read_text()
    crd = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2.3 MB of YAML
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return strict(version["schema"]["openAPIV3Schema"])


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((KUBERAY / name).read_text())


def cluster_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """A RayCluster's spec, or a RayJob's rayClusterSpec (none when it selects a running cluster)."""
    spec = manifest["spec"]
    if manifest["kind"] == "RayCluster":
        return [spec]
    return [spec["rayClusterSpec"]] if "rayClusterSpec" in spec else []


def containers(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_every_manifest_is_checked():
    assert MANIFESTS == ["raycluster.yaml", "rayjob-data.yaml", "rayjob-sft.yaml"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_against_the_kuberay_crd(name):
    manifest = load(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    jsonschema.validate(manifest, crd_schema(manifest["kind"]))


def test_the_strict_schema_catches_a_misspelt_field():
    manifest = load("rayjob-data.yaml")
    manifest["spec"]["shutdownAfterJobFinish"] = manifest["spec"].pop("shutdownAfterJobFinishes")
    with pytest.raises(jsonschema.ValidationError, match="shutdownAfterJobFinish"):
        jsonschema.validate(manifest, crd_schema("RayJob"))


@pytest.mark.parametrize("name", [n for n in MANIFESTS if n.startswith("rayjob")])
def test_rayjob_runs_a_real_config_the_documented_way(name):
    spec = load(name)["spec"]
    command = shlex.split(spec["entrypoint"])
    assert command[:5] == ["uv", "run", "--frozen", "--no-dev", "aloe"], command
    configs = [a for a in command if a.startswith("configs/")]
    assert configs and all((REPO_ROOT / c).is_file() for c in configs)
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(runtime_env) == {"working_dir", "env_vars"}
    assert runtime_env["env_vars"] == {"UV_CONFIG_FILE": "infra/uv-job.toml"}  # infra/submit.sh's
    assert (REPO_ROOT / runtime_env["env_vars"]["UV_CONFIG_FILE"]).is_file()
    assert spec["submitterConfig"]["backoffLimit"] >= 1 and spec["ttlSecondsAfterFinished"] > 0
    assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)
    if "rayClusterSpec" in spec:
        assert spec["shutdownAfterJobFinishes"] is True
    else:
        assert spec["clusterSelector"] == {"ray.io/cluster": load("raycluster.yaml")["metadata"]["name"]}


@pytest.mark.parametrize("name", [n for n in MANIFESTS if cluster_specs(load(n))])
def test_cluster_groups_tokens_python_and_secrets(name):
    for cluster in cluster_specs(load(name)):
        assert cluster["rayVersion"] == "2.60.0" and cluster["authOptions"] == {"mode": "token"}
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # drivers only
        for container in containers(cluster):
            assert container["image"].startswith("rayproject/ray:2.60.0-py311")
            env = {e["name"]: e for e in container["env"]}
            assert env["UV_PYTHON"]["value"] == "/home/ray/anaconda3/bin/python"
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "aloe-s3", "key": key}
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert limits == requests  # Guaranteed QoS: Ray sizes itself from the limits
        for group in cluster["workerGroupSpecs"]:
            (container,) = group["template"]["spec"]["containers"]
            gpus = container["resources"]["limits"].get("nvidia.com/gpu")
            if group["groupName"] == "h100":
                assert gpus == group["rayStartParams"]["num-gpus"] == "8"
                assert "cu12" in container["image"]
                assert group["template"]["spec"]["nodeSelector"] == {
                    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"
                }
            else:
                assert gpus is None
    groups = {g["groupName"] for c in cluster_specs(load(name)) for g in c["workerGroupSpecs"]}
    assert groups == ({"cpu", "h100"} if name == "raycluster.yaml" else {"cpu"})
