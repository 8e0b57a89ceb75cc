"""Pure capacity math of module_utils/_capacity.py and gpu_capacity's main() on bad input."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import (
    assess,
    node_gpu_type,
    node_view,
    pod_request,
    quantity,
    quota_view,
)
from ansible_collections.haw_icc.llm.plugins.modules import gpu_capacity


def pod(gpus=0, limit_only=False, init=None, sidecar=None, overhead=None):
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if limit_only else {"requests": {"nvidia.com/gpu": str(gpus)}}
    spec = {"containers": [{"name": "a", "resources": res}, {"name": "b", "resources": {}}]}
    inits = []
    if init is not None:
        inits.append({"name": "i", "resources": {"requests": {"nvidia.com/gpu": str(init)}}})
    if sidecar is not None:
        inits.insert(0, {"name": "s", "restartPolicy": "Always",
                         "resources": {"requests": {"nvidia.com/gpu": str(sidecar)}}})
    if inits:
        spec["initContainers"] = inits
    if overhead is not None:
        spec["overhead"] = {"nvidia.com/gpu": str(overhead)}
    return {"spec": spec}


def node(name="n1", gpus=4, taint="gpu-tesla-v100", ready=True, cordoned=False, product="Tesla-V100-PCIE-16GB"):
    labels = {"nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": "16384", "nvidia.com/gpu.count": str(gpus)}
    spec = {"taints": [{"key": taint, "effect": "NoSchedule"}] if taint else []}
    if cordoned:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"capacity": {"nvidia.com/gpu": str(gpus)}, "allocatable": {"nvidia.com/gpu": str(gpus)},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize("text,value", [("4", 4), ("500m", 0.5), ("16Gi", 16 * 2 ** 30), ("1k", 1000), (3, 3)])
def test_quantity(text, value):
    assert quantity(text) == value


def test_quantity_refuses_garbage():
    with pytest.raises(ValueError):
        quantity("four")


@pytest.mark.parametrize("p,expected", [
    (pod(2), 2),
    (pod(3, limit_only=True), 3),       # extended resource: limit without request
    (pod(1, init=3), 3),                # the largest init container wins
    (pod(1, init=3, sidecar=1), 4),     # sidecar runs during the init container and after
    (pod(2, overhead=1), 3),
    ({"spec": {"containers": [{"name": "x"}]}}, 0),
])
def test_pod_request(p, expected):
    assert pod_request(p) == expected


def test_node_type_from_taint_or_product():
    assert node_gpu_type(node()) == "gpu-tesla-v100"
    assert node_gpu_type(node(taint=None, product="Tesla-V100S-PCIE-32GB")) == "gpu-tesla-v100s"
    assert node_gpu_type(node(taint=None, product="A100")) is None


def test_node_view_schedulability():
    assert node_view(node(), 1, "gpu-tesla-v100")["free"] == 3
    assert node_view(node(), 1, "gpu-tesla-v100")["schedulable"]
    other = node_view(node(taint="gpu-tesla-v100s"), 0, "gpu-tesla-v100")
    assert not other["schedulable"] and "gpu-tesla-v100s:NoSchedule" in other["unschedulable_reasons"][0]
    assert node_view(node(ready=False), 0, "gpu-tesla-v100")["unschedulable_reasons"] == ["not Ready"]
    assert node_view(node(cordoned=True), 0, "gpu-tesla-v100")["unschedulable_reasons"] == ["cordoned"]
    assert node_view(node(), None)["free"] is None
    assert node_view(node(), 6)["free"] == 0


QUOTA = {"name": "icc-quota", "resource": "requests.nvidia.com/gpu", "hard": 4, "used": 2, "free": 2}


def test_assess_quota_reason():
    views = [node_view(node("a"), 0, "gpu-tesla-v100")]
    out = assess(views, 4, "gpu-tesla-v100", QUOTA)
    assert out["fits"] is False
    assert out["reason"].startswith("quota allows 2 GPUs, you asked for 4")


def test_assess_largest_block_reason():
    views = [node_view(node("a"), 2, "gpu-tesla-v100"), node_view(node("b"), 1, "gpu-tesla-v100")]
    out = assess(views, 4, "gpu-tesla-v100", None)
    assert out["fits"] is False
    assert out["reason"] == "no single v100 node has 4 free GPUs; largest is 3 on b"
    assert out["largest_free_block"] == {"gpus": 3, "node": "b"}
    assert out["totals"]["gpu-tesla-v100"]["free"] == 5
    ok = assess(views, 3, "gpu-tesla-v100", dict(QUOTA, free=4))
    assert ok["fits"] is True and "3 free on b" in ok["reason"]


def test_assess_free_gpus_on_unschedulable_nodes_do_not_count():
    views = [node_view(node("a", cordoned=True), 0, "gpu-tesla-v100")]
    out = assess(views, 1, "gpu-tesla-v100", None)
    assert not out["fits"] and "cordoned" in out["reason"]
    assert assess([], 1, "gpu-tesla-v100", None)["reason"].startswith("no v100 node matches")


def test_assess_without_cluster_view_uses_quota_only():
    out = assess([], 2, "gpu-tesla-v100", QUOTA, cluster_view=False, cluster_note="nodes forbidden")
    assert out["fits"] is True and "unknown (nodes forbidden)" in out["reason"]
    out = assess([], 3, "gpu-tesla-v100", QUOTA, cluster_view=False, cluster_note="nodes forbidden")
    assert out["fits"] is False and out["reason"].startswith("quota allows 2 GPUs")


def test_quota_view_picks_the_tightest():
    quotas = [{"metadata": {"name": "a"}, "status": {"hard": {"requests.nvidia.com/gpu": "4", "requests.cpu": "32"},
                                                     "used": {"requests.nvidia.com/gpu": "1"}}},
              {"metadata": {"name": "b"}, "status": {"hard": {"requests.nvidia.com/gpu": "2"},
                                                     "used": {"requests.nvidia.com/gpu": "1"}}}]
    best, other = quota_view(quotas)
    assert best == {"name": "b", "resource": "requests.nvidia.com/gpu", "hard": 2, "used": 1, "free": 1}
    assert other["requests.cpu"] == {"hard": "32", "used": "0"}
    assert quota_view([]) == (None, {})


def run_main(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_main_refuses_zero_gpus_before_touching_the_cluster(capsys, tmp_path):
    out = run_main(gpu_capacity, {"count": 0, "kubeconfig": str(tmp_path / "missing")}, capsys)
    assert out["failed"] and out["msg"].startswith("count=0") and out["error"] == "InputError"


def test_main_refuses_unknown_gpu_type(capsys):
    out = run_main(gpu_capacity, {"gpu_type": "gpu-a100"}, capsys)
    assert out["failed"] and "gpu_type" in out["msg"] and "gpu-tesla-v100" in out["msg"]


def test_main_reports_a_missing_kubeconfig(capsys, tmp_path):
    out = run_main(gpu_capacity, {"kubeconfig": str(tmp_path / "nope")}, capsys)
    assert out["failed"] and out["error"] == "KubeconfigError" and "does not exist" in out["msg"]
