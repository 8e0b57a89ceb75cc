"""The log analysis of logs.yml (plugins/module_utils/_logs.py)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _logs


def pod(name, component, statuses, scheduled=None):
    conditions = [{"type": "PodScheduled", "status": "False", "message": scheduled}] if scheduled else []
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
            "spec": {"nodeName": "gpu-1", "containers": [{"name": s["name"]} for s in statuses] or [{"name": "c"}]},
            "status": {"phase": "Running", "containerStatuses": statuses, "conditions": conditions}}


RUNNING = {"name": "vllm", "restartCount": 2, "ready": True, "state": {"running": {}},
           "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-12-03T10:00:00Z"}}}
LOG = "\n".join([
    "INFO starting", "", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "RuntimeError: NCCL error in: ../nccl.cpp:1", "worker exit code: -9", "INFO done"])


def test_targets_pick_the_components_and_sort_by_pod():
    pods = [pod("b", "engine", [RUNNING]), pod("a", "webui", [dict(RUNNING, name="webui")]), pod("c", "other", [])]
    assert [(t["pod"], t["component"]) for t in _logs.targets(pods, ["engine", "webui"])] == [("a", "webui"), ("b", "engine")]
    assert [t["pod"] for t in _logs.targets(pods, ["engine"])] == ["b"]


def test_readable_only_when_there_is_such_a_log():
    [t] = _logs.targets([pod("p", "engine", [RUNNING])], ["engine"])
    assert _logs.readable(t, False) and _logs.readable(t, True)
    fresh = dict(RUNNING, restartCount=0)
    [t] = _logs.targets([pod("p", "engine", [fresh])], ["engine"])
    assert _logs.readable(t, False) and not _logs.readable(t, True)
    waiting = {"name": "vllm", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
    [t] = _logs.targets([pod("p", "engine", [waiting])], ["engine"])
    assert not _logs.readable(t, False)
    [t] = _logs.targets([pod("p", "engine", [], scheduled="0/4 nodes are available")], ["engine"])
    assert not _logs.readable(t, False) and t["scheduled_message"] == "0/4 nodes are available"


def test_analysis_finds_oom_cuda_nccl_and_probe_failures():
    [t] = _logs.targets([pod("p", "engine", [RUNNING])], ["engine"])
    events = [{"involvedObject": {"name": "p"}, "type": "Warning", "reason": "Unhealthy", "count": 3,
               "message": "Startup probe failed"},
              {"involvedObject": {"name": "p"}, "type": "Warning", "reason": "Unhealthy", "count": 1,
               "message": "Startup probe failed"},
              {"involvedObject": {"name": "other"}, "type": "Normal", "reason": "Pulled", "message": "x"}]
    a = _logs.analyse(t, LOG, events, previous=True, show=2)
    assert a["oom_killed"] and a["restarts"] == 2 and a["state"] == "running"
    assert a["last_termination"] == {"reason": "OOMKilled", "exit_code": 137, "finished": "2026-12-03T10:00:00Z"}
    assert a["lines"] == 5 and a["tail"] == ["worker exit code: -9", "INFO done"]
    assert len(a["cuda_errors"]) == 1 and len(a["nccl_errors"]) == 1
    assert a["oom_lines"] == ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "worker exit code: -9"]
    assert a["probe_failures"] == ["Startup probe failed"] and len(a["events"]) == 2
    text = "\n".join(_logs.lines("ns", [a], previous=True))
    assert "previous container" in text and "!! OOMKilled" in text and "1 CUDA error line(s)" in text
    assert "1 NCCL error/warning line(s)" in text and "out-of-memory/kill line(s)" not in text
    assert _logs.file_name(t, True) == "p_vllm.previous.log"


def test_no_log_and_no_pods_are_said():
    waiting = {"name": "vllm", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    [t] = _logs.targets([pod("p", "engine", [waiting])], ["engine"])
    a = _logs.analyse(t, None, [])
    assert a["state"] == "waiting (ImagePullBackOff)" and a["log_skipped"] == "container not started"
    assert "log: container not started" in _logs.lines("ns", [a])
    assert _logs.lines("ns", [], components=["engine"]) == [
        "ns: no pods of components engine (labelled app.kubernetes.io/part-of=haw-icc-llm)."]
