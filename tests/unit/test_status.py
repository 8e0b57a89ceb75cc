"""The status report and table (plugins/module_utils/_status.py) and the one parser of an engine's
command line (_live.command_settings)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _live, _status

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)


def dep(name, engine, args, gpus=1, ready=1, created="2026-12-03T11:00:00Z"):
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"app.kubernetes.io/name": engine, "app.kubernetes.io/component": "engine"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                     "template": {"spec": {"containers": [{
                         "name": engine, "image": "img:%s" % engine, "args": args,
                         "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}},
            "status": {"readyReplicas": ready}}


def pod(name, instance, node, restarts=0, deleting=False, waiting=None):
    cs = {"name": "c", "restartCount": restarts, "state": {"waiting": waiting} if waiting else {"running": {}}}
    meta = {"name": name, "labels": {"app.kubernetes.io/instance": instance}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T11:59:00Z"
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"containerStatuses": [cs]}}


@pytest.mark.parametrize("args,model", [
    (["--model", "org/a", "--port", "8000"], "org/a"),
    (["--model=org/b"], "org/b"),
    (["--model-id", "org/c"], "org/c"),
    (["serve", "org/d", "--port", "8000"], "org/d"),
    (["--port", "8000"], None),
])
def test_command_settings_reads_the_model_in_every_spelling(args, model):
    assert _live.command_settings({"args": args})["model"] == model


def test_command_settings_reads_numbers_and_defaults():
    got = _live.command_settings({"command": ["python3"], "args": ["--max-model-len", "2048", "--tensor-parallel-size=2"]})
    assert got["max_model_len"] == 2048 and got["tensor_parallel"] == 2 and got["quantization"] == ""
    assert _live.command_settings({})["tensor_parallel"] == 1


@pytest.mark.parametrize("seconds,text", [(59, "59s"), (119, "119s"), (600, "10m"), (7200, "2h"), (3 * 86400, "3d")])
def test_age_like_kubectl(seconds, text):
    ts = (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _status.age(ts, NOW) == text


def test_report_rows_services_pvcs_and_problems():
    deps = [dep("webui", "webui", [], gpus=0), dep("vllm", "vllm", ["--model", "org/m"], gpus=2)]
    pods = [pod("vllm-1", "vllm", "gpu-1", restarts=2), pod("vllm-0", "vllm", "gpu-0", deleting=True),
            pod("webui-1", "webui", "gone-node",
                waiting={"reason": "CreateContainerConfigError", "message": 'secret "k" not found'})]
    services = [{"metadata": {"name": "vllm"}, "spec": {"ports": [{"port": 8000}]}}]
    slices = [{"metadata": {"labels": {"kubernetes.io/service-name": "vllm"}},
               "ports": [{"port": 8000}],
               "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.6"], "conditions": {"ready": False}}]}]
    pvcs = [{"metadata": {"name": "vllm-cache", "creationTimestamp": "2026-12-01T12:00:00Z"},
             "spec": {"resources": {"requests": {"storage": "50Gi"}}}, "status": {"phase": "Pending"}}]
    rep = _status.report("ns", deps, pods, services, slices, pvcs, {"gone-node": "gone"}, now=NOW)
    assert [w["name"] for w in rep["workloads"]] == ["vllm", "webui"]
    vllm = rep["workloads"][0]
    assert (vllm["model"], vllm["gpus"], vllm["nodes"], vllm["restarts"], vllm["age"]) == ("org/m", 2, "gpu-1", 2, "60m")
    assert rep["workloads"][1]["nodes"] == "gone-node (gone)" and rep["workloads"][1]["model"] == "-"
    assert rep["services"] == [{"name": "vllm", "ports": "8000", "endpoints": "10.0.0.5:8000"}]
    assert rep["pvcs"][0] == {"name": "vllm-cache", "status": "Pending", "size": "50Gi", "class": "-", "age": "2d"}
    assert rep["problems"][0].startswith("Pod webui-1 is bound to node gone-node, which no longer exists")
    assert any("CreateContainerConfigError" in p or 'secret "k" not found' in p for p in rep["problems"][1:]), rep
    assert _status.pod_nodes(pods) == ["gone-node", "gpu-1"]


def test_lines_make_aligned_sections_and_say_none():
    rep = _status.report("ns", [dep("vllm", "vllm", ["--model", "org/m"])], [], [], [], [], now=NOW)
    text = _status.lines(rep)
    assert text[0] == "Namespace ns" and "Workloads:" in text
    header = [line for line in text if line.startswith("  NAME")][0]
    row = [line for line in text if line.startswith("  vllm")][0]
    assert header.index("MODEL") == row.index("org/m")
    assert "Services: none" in text and "PVCs: none" in text and "Problems:" not in text


@pytest.mark.parametrize("node,state", [
    (None, "gone"),
    ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, None),
    ({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}, "NotReady"),
    ({"status": {}}, "NotReady"),
])
def test_node_state(node, state):
    assert _status.node_state(node) == state
