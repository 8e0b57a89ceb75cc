"""The words of the rollout's progress lines (plugins/module_utils/_rollout.py ``phase``,
``elapsed_text``): pure, from a pod, its Events and its container's last log line."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _rollout


def pod(name="vllm-1", created="2026-12-04T10:00:00Z", node="gpu-v100-2", statuses=None, conditions=None, deleting=False):
    meta = {"name": name, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T10:05:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"containerStatuses": statuses or [], "conditions": conditions or []}}


def event(reason, message="", name="vllm-1", at="2026-12-04T10:00:05Z"):
    return {"reason": reason, "message": message, "involvedObject": {"name": name}, "lastTimestamp": at}


def test_elapsed_text():
    assert _rollout.elapsed_text(45) == "45s" and _rollout.elapsed_text(190) == "3m10s"
    assert _rollout.elapsed_text(362.7) == "6m02s"


def test_pulling_the_image_on_its_node():
    events = [event("Scheduled", at="2026-12-04T10:00:01Z"),
              event("Pulling", 'Pulling image "vllm/vllm-openai:v0.8.5"', at="2026-12-04T10:00:02Z")]
    assert _rollout.phase([pod()], events) == "pulling vllm/vllm-openai:v0.8.5 on gpu-v100-2"


def test_loading_the_model_with_the_last_log_line():
    running = [{"name": "vllm", "ready": False, "restartCount": 0, "state": {"running": {}}}]
    assert _rollout.phase([pod(statuses=running)], [], "Loading weights took 41.2 s\n") == (
        'loading the model on gpu-v100-2 (last log: "Loading weights took 41.2 s")')


def test_back_off_restarts_and_the_newest_pod():
    crash = [{"name": "vllm", "ready": False, "restartCount": 3,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    old = pod("vllm-0", created="2026-12-04T09:00:00Z", deleting=True)
    assert _rollout.phase([old, pod(statuses=crash)]) == "restarting after a crash (back-off) on gpu-v100-2 (restarts: 3)"


def test_not_scheduled_and_no_pod():
    pending = pod(node=None, conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                          "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."}])
    assert _rollout.phase([pending]).startswith("not scheduled yet: 0/4 nodes are available")
    assert _rollout.phase([]) == "waiting for the pod to be created"
    assert _rollout.phase([pod()], [event("Started")]) == "starting the container on gpu-v100-2"
