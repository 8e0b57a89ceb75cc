"""Rollout rules and the rollout wait (plugins/module_utils/_rollout.py, module rollout_status)."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _rollout
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ClusterUnreachableError
from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import wait_rollout


# --- rollout verdicts ----------------------------------------------------------------------------

def dep(conditions=(), **status):
    base = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    base.update(status)
    base["conditions"] = list(conditions)
    return {"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": base}


def pod(node="gpu-v100-1", conditions=(), waiting=None, deleting=False, name="p", gpus=None, cpu=None):
    meta = {"name": name, "uid": "uid-" + name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {"conditions": list(conditions)}
    if waiting:
        status["containerStatuses"] = [{"name": "c", "state": {"waiting": {"reason": waiting, "message": "m"}}}]
    spec = {"nodeName": node} if node else {}
    requests = dict(({"nvidia.com/gpu": str(gpus)} if gpus is not None else {}), **({"cpu": cpu} if cpu else {}))
    if requests:
        spec["containers"] = [{"name": "vllm", "resources": {"requests": requests, "limits": dict(requests)}}]
    return {"metadata": meta, "spec": spec, "status": status}


AVAILABLE = {"type": "Available", "status": "True"}


def test_rollout_available():
    verdict = _rollout.rollout_status(dep([AVAILABLE]), [pod()])
    assert verdict["state"] == "available" and verdict["created"] and verdict["scheduled"]


def test_rollout_quota_failure_is_reported_at_once():
    rf = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
          "message": 'pods "x" is forbidden: exceeded quota: icc-quota'}
    verdict = _rollout.rollout_status(dep([rf], updatedReplicas=0, availableReplicas=0), [])
    assert verdict["state"] == "failed" and "exceeded quota" in verdict["reason"]
    assert not verdict["created"]


def test_rollout_ignores_terminating_pods():
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "x"}
    verdict = _rollout.rollout_status(dep([AVAILABLE]), [pod(node=None, conditions=[cond], deleting=True), pod()])
    assert verdict["state"] == "available"


def test_rollout_missing_secret_fails():
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [pod(waiting="CreateContainerConfigError")])
    assert verdict["state"] == "failed" and "CreateContainerConfigError" in verdict["reason"]


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_rollout_image_pull_errors_fail_fast_naming_the_image_and_the_variable(reason):
    image = "unpullable.sandbox.invalid/vllm/vllm-openai:v0.8.5"
    bad = pod()
    bad["status"]["containerStatuses"] = [{"name": "vllm", "image": image, "ready": False, "state": {
        "waiting": {"reason": reason, "message": 'Back-off pulling image "%s"' % image}}}]
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [bad])
    assert verdict["state"] == "failed"
    assert reason in verdict["reason"] and "(image %s)" % image in verdict["reason"]
    assert "check its registry, name and tag (vllm_image)" in verdict["reason"]


def test_rollout_crash_loop_fails_fast_and_points_at_the_log():
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [pod(waiting="CrashLoopBackOff")])
    assert verdict["state"] == "failed" and "CrashLoopBackOff" in verdict["reason"]
    assert "last exited" not in verdict["reason"]  # no lastState: nothing invented


def test_a_crash_loop_names_how_the_program_last_ended_with_its_own_last_line():
    crashing = pod(waiting="CrashLoopBackOff")
    crashing["status"]["containerStatuses"][0]["lastState"] = {"terminated": {
        "exitCode": 1, "reason": "Error",
        "message": "INFO 05-01 api_server.py:1043] vLLM API server version 0.8.5\n"
                   "ValueError: Total number of attention heads (9) must be divisible by tensor parallel size (2).\n"}}
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [crashing])
    assert verdict["state"] == "failed"
    assert verdict["reason"].endswith(
        "It last exited with code 1 (Error): ValueError: Total number of attention heads (9) must be divisible "
        "by tensor parallel size (2)")
    assert _rollout.last_exit({"lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}) == \
        "It last exited with code 137 (OOMKilled)"
    assert _rollout.last_exit({"lastState": {}}) == ""
    assert "kubectl logs --previous" in verdict["reason"]


def test_rollout_running_but_not_ready_keeps_waiting_and_says_so():
    unready = pod(conditions=[{"type": "Ready", "status": "False"}])
    unready["status"]["containerStatuses"] = [{"name": "vllm", "ready": False, "state": {"running": {}}}]
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [unready])
    assert verdict["state"] == "progressing"
    assert "container vllm of pod p runs but is not ready" in verdict["reason"]


def test_rollout_container_creating_keeps_waiting():
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [pod(waiting="ContainerCreating")])
    assert verdict["state"] == "progressing" and "ContainerCreating" in verdict["reason"]


def test_rollout_progress_deadline_fails():
    prog = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "m"}
    assert _rollout.rollout_status(dep([prog], availableReplicas=0), [])["state"] == "failed"


def test_rollout_old_generation_is_not_available():
    verdict = _rollout.rollout_status(dep([AVAILABLE], observedGeneration=1), [pod()])
    assert verdict["state"] == "progressing" and not verdict["created"]


def test_rollout_missing_deployment_is_progressing():
    assert _rollout.rollout_status({}, [])["state"] == "progressing"


# --- unschedulable pods: wait for what can change, fail at once on what cannot ---------------------

# Scheduler messages as kube-scheduler v1.35 (the sandbox's) writes them: it no longer names taints.
GPU_BUSY = ("0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated "
            "taint(s), 2 Insufficient nvidia.com/gpu. no new claims to deallocate, preemption: 0/4 nodes are available: "
            "2 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.")
NODE_AWAY = ("0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 node(s) had untolerated "
             "taint(s). no new claims to deallocate, preemption: 0/4 nodes are available: 4 Preemption is not helpful "
             "for scheduling.")
# Older schedulers name the taint: then a message alone can tell that every node is ruled out for good.
RULED_OUT = ("0/4 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated "
             "taint {gpu-tesla-v100s: }. preemption: 0/4 nodes are available: 4 Preemption is not helpful for "
             "scheduling.")
AWAY_NAMED = ("0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated "
              "taint {gpu-tesla-v100s: }, 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. "
              "preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")
V100 = "Tesla-V100-PCIE-16GB"


def unschedulable(message, **kw):
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    return pod(node=None, conditions=[cond], **kw)


def node(cpu="31", gpus="4", memory="120Gi", name="n", taints=(), product=None):
    labels = {"nvidia.com/gpu.product": product} if product else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": [
        {"key": k, "effect": e} for k, e in taints]},
        "status": {"allocatable": {"cpu": cpu, "nvidia.com/gpu": gpus, "memory": memory}}}


def sandbox_nodes(away=False):
    """The sandbox's four nodes; ``away``: the V100 nodes tainted unreachable, as after missed heartbeats."""
    gone = [("node.kubernetes.io/unreachable", "NoSchedule")] if away else []
    return [node(name="gpu-v100-1", taints=[("gpu-tesla-v100", "NoSchedule")] + gone, product=V100),
            node(name="gpu-v100-2", taints=[("gpu-tesla-v100", "NoSchedule")] + gone, product=V100),
            node(name="gpu-v100s-1", taints=[("gpu-tesla-v100s", "NoSchedule")], product="Tesla-V100S-PCIE-32GB"),
            node(name="cpu-1", gpus="0")]


def engine_pod(message, product=V100, toleration="gpu-tesla-v100", gpus=1):
    """An unschedulable engine pod as the vllm role renders it: GPU toleration and node affinity."""
    p = unschedulable(message, gpus=gpus)
    p["spec"]["tolerations"] = [{"key": toleration, "operator": "Exists", "effect": "NoSchedule"}]
    p["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}]}]}}}
    return p


def test_node_reasons_reads_the_per_node_counts_and_leaves_out_preemption():
    assert _rollout.node_reasons(GPU_BUSY) == [
        (1, "node(s) didn't match Pod's node affinity/selector"), (1, "node(s) had untolerated taint(s)"),
        (2, "Insufficient nvidia.com/gpu")]
    assert _rollout.node_reasons(RULED_OUT) == [
        (3, "node(s) didn't match Pod's node affinity/selector"), (1, "node(s) had untolerated taint {gpu-tesla-v100s: }")]
    assert _rollout.node_reasons("something else") == []


@pytest.mark.parametrize("message", [GPU_BUSY, NODE_AWAY, AWAY_NAMED, "a message in a format we do not know", ""])
def test_an_unschedulable_pod_whose_reason_can_change_keeps_the_rollout_waiting(message):
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [unschedulable(message, gpus=1)])
    assert verdict["state"] == "progressing" and not verdict["scheduled"]
    assert verdict["unschedulable"] == [{"pod": "p", "uid": "uid-p", "message": message}]
    assert "pod p cannot be scheduled yet: %s" % message in verdict["reason"]


def test_with_the_nodes_known_a_pod_that_only_waits_for_gpus_or_a_node_keeps_waiting():
    for message, nodes in ((GPU_BUSY, sandbox_nodes()), (NODE_AWAY, sandbox_nodes(away=True))):
        verdict = _rollout.rollout_status(dep(availableReplicas=0), [engine_pod(message)], nodes=nodes)
        assert verdict["state"] == "progressing", verdict


def test_with_the_nodes_known_a_pod_no_node_can_ever_take_fails_at_once_naming_each_node():
    """The V100S product asked for, but only the V100 taint tolerated: v1.35's message cannot tell,
    the nodes can."""
    pod_ = engine_pod(NODE_AWAY, product="Tesla-V100S-PCIE-32GB")
    assert _rollout.rollout_status(dep(availableReplicas=0), [pod_])["state"] == "progressing"
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [pod_], nodes=sandbox_nodes(away=True))
    assert verdict["state"] == "failed"
    assert ("no node can ever take it: gpu-v100-1: required node affinity does not match; gpu-v100-2: required node "
            "affinity does not match; gpu-v100s-1: taint gpu-tesla-v100s=:NoSchedule not tolerated; cpu-1: required "
            "node affinity does not match") in verdict["reason"]


def test_node_rules_out_reads_tolerations_selectors_and_allocatable():
    p = engine_pod(GPU_BUSY)
    gpu, _gpu2, v100s, cpu = sandbox_nodes()
    assert _rollout.node_rules_out(p, gpu) is None
    assert _rollout.node_rules_out(p, v100s) == "taint gpu-tesla-v100s=:NoSchedule not tolerated"
    assert _rollout.node_rules_out(p, cpu) == "required node affinity does not match"
    p["spec"]["affinity"] = {}
    p["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": V100}
    assert _rollout.node_rules_out(p, cpu) == "node selector nvidia.com/gpu.product=%s does not match" % V100
    p["spec"]["nodeSelector"] = {}
    assert _rollout.node_rules_out(p, cpu) == "asks for 1 nvidia.com/gpu, allocatable 0"
    p["spec"]["tolerations"] = [{"operator": "Exists"}]  # tolerates everything
    assert _rollout.node_rules_out(p, v100s) is None


def test_every_node_ruled_out_by_the_pods_own_placement_fails_at_once():
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [unschedulable(RULED_OUT, gpus=1)])
    assert verdict["state"] == "failed"
    assert verdict["reason"] == ("pod p cannot be scheduled, and waiting cannot change that (every node is ruled out "
                                 "by the pod's own placement rules): " + RULED_OUT)


def test_more_gpus_than_any_icc_node_has_fails_at_once():
    verdict = _rollout.rollout_status(dep(availableReplicas=0), [unschedulable(GPU_BUSY, gpus=5)])
    assert verdict["state"] == "failed" and "it asks for 5 GPUs and no ICC node has more than 4" in verdict["reason"]


def test_a_request_no_node_can_meet_fails_at_once_when_the_nodes_are_known():
    message = "0/4 nodes are available: 4 Insufficient cpu. preemption: 0/4 nodes are available: 4 x."
    pods = [unschedulable(message, gpus=1, cpu="31500m")]
    assert _rollout.rollout_status(dep(availableReplicas=0), pods)["state"] == "progressing"
    verdict = _rollout.rollout_status(dep(availableReplicas=0), pods, nodes=[node(cpu="31"), node(cpu="8", name="m")])
    assert verdict["state"] == "failed"
    assert "no node can ever take it: n: asks for 31.5 cpu, allocatable 31; m: asks for 31.5 cpu, allocatable 8" \
        in verdict["reason"]
    # A request that some node can meet once the pods on it are gone: waiting may help.
    pods = [unschedulable(message, gpus=1, cpu="16")]
    assert _rollout.rollout_status(dep(availableReplicas=0), pods, nodes=[node(cpu="31")])["state"] == "progressing"


def test_a_quota_refusal_still_fails_at_once():
    rf = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
          "message": 'pods "x" is forbidden: exceeded quota: icc-quota, requested: requests.nvidia.com/gpu=2'}
    verdict = _rollout.rollout_status(dep([rf], updatedReplicas=0, availableReplicas=0), [])
    assert verdict["state"] == "failed" and "exceeded quota" in verdict["reason"]


# --- waiting for a rollout --------------------------------------------------------------------------

class FakeClock(object):
    """Time that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_rollout_polls_until_available():
    states = [(dep(availableReplicas=0), [pod()]), (dep(availableReplicas=0), [pod()]), (dep([AVAILABLE]), [pod()])]
    clock = FakeClock()
    verdict = wait_rollout(lambda: states.pop(0), timeout=60, poll=2, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "available" and verdict["polls"] == 3 and not verdict["timed_out"]
    assert clock.sleeps == [2, 2] and verdict["pods"][0]["node"] == "gpu-v100-1"


def test_wait_rollout_gives_up_at_the_timeout_with_the_last_reason():
    clock = FakeClock()
    verdict = wait_rollout(lambda: (dep(availableReplicas=0), [pod()]), timeout=10, poll=3,
                           clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "progressing" and verdict["timed_out"]
    assert verdict["reason"].startswith("not available after 10 s (waiting: 1 of 1 pods updated, 0 available")
    assert sum(clock.sleeps) == 10


def test_wait_rollout_retries_an_unreachable_api_server_for_the_grace_period_only():
    clock = FakeClock()
    calls = []

    def flaky():
        calls.append(clock())
        if len(calls) in (1, 2):
            raise ClusterUnreachableError("down", "VPN")
        return dep([AVAILABLE]), [pod()]
    assert wait_rollout(flaky, timeout=60, poll=2, api_grace=30, clock=clock, sleep=clock.sleep)["state"] == "available"

    def down():
        raise ClusterUnreachableError("Cannot reach the Kubernetes API server", "VPN")
    clock = FakeClock()
    with pytest.raises(ClusterUnreachableError):
        wait_rollout(down, timeout=600, poll=2, api_grace=30, clock=clock, sleep=clock.sleep)
    assert clock.now == 30


def test_wait_rollout_waits_for_gpus_that_a_terminating_pod_gives_back():
    """Unschedulable for 40 s (a pod still holds the GPUs), then scheduled and available."""
    clock = FakeClock()

    def read():
        if clock() < 40:
            return dep(availableReplicas=0), [unschedulable(GPU_BUSY, gpus=1)]
        return dep([AVAILABLE]), [pod(gpus=1)]
    verdict = wait_rollout(read, timeout=600, poll=2, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "available" and clock.now == 40
    assert verdict["unschedulable_waits"] == [{"pod": "p", "seconds": 38.0, "message": GPU_BUSY, "scheduled": True}]


def test_wait_rollout_fails_once_the_unschedulable_grace_has_passed():
    clock = FakeClock()
    verdict = wait_rollout(lambda: (dep(availableReplicas=0), [unschedulable(NODE_AWAY, gpus=1)]), timeout=2700,
                           poll=2, unschedulable_grace=120, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "failed" and not verdict["timed_out"] and clock.now == 120
    assert verdict["reason"] == ("pod p cannot be scheduled: %s (for 120 s, longer than the 120 s that GPUs of a "
                                 "terminating pod or a node that is away for a moment need to come back)" % NODE_AWAY)
    assert verdict["unschedulable_waits"][0]["scheduled"] is False


def test_wait_rollout_counts_the_grace_per_pod():
    """A new pod (another uid) that is unschedulable starts its own grace."""
    clock = FakeClock()

    def read():
        name = "a" if clock() < 100 else "b"
        return dep(availableReplicas=0), [unschedulable(GPU_BUSY, gpus=1, name=name)]
    verdict = wait_rollout(read, timeout=2700, poll=10, unschedulable_grace=120, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "failed" and clock.now == 220 and "pod b cannot be scheduled" in verdict["reason"]
    assert [(w["pod"], w["scheduled"]) for w in verdict["unschedulable_waits"]] == [("a", True), ("b", False)]


def test_wait_rollout_fails_at_once_on_a_permanent_reason_without_using_the_grace():
    clock = FakeClock()
    verdict = wait_rollout(lambda: (dep(availableReplicas=0), [unschedulable(RULED_OUT, gpus=1)]), timeout=600,
                           clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "failed" and clock.sleeps == []


def test_wait_rollout_reads_nodes_only_while_a_pod_is_unschedulable_and_stops_when_denied():
    message = "0/4 nodes are available: 4 Insufficient cpu."
    clock = FakeClock()
    reads = []

    def nodes():
        reads.append(clock())
        return [node(cpu="31")]
    verdict = wait_rollout(lambda: (dep(availableReplicas=0), [unschedulable(message, gpus=1, cpu="40")]), timeout=600,
                           read_nodes=nodes, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "failed" and "asks for 40 cpu, allocatable 31" in verdict["reason"] and reads == [0]

    clock, reads = FakeClock(), []
    states = [(dep(availableReplicas=0), [pod()])] * 3 + [(dep([AVAILABLE]), [pod()])]
    wait_rollout(lambda: states.pop(0), timeout=600, read_nodes=nodes, clock=clock, sleep=clock.sleep)
    assert reads == []  # nothing unschedulable: no node read

    clock, denied = FakeClock(), []

    def forbidden():
        denied.append(clock())
        return None
    verdict = wait_rollout(lambda: (dep(availableReplicas=0), [unschedulable(message, gpus=1, cpu="40")]), timeout=600,
                           poll=2, unschedulable_grace=60, read_nodes=forbidden, clock=clock, sleep=clock.sleep)
    assert verdict["state"] == "failed" and clock.now == 60 and denied == [0]


def test_container_problems_name_the_crash_loop_its_restarts_and_last_line_for_status():
    crashing = pod(waiting="CrashLoopBackOff", name="vllm-1")
    crashing["status"]["containerStatuses"][0].update(restartCount=3, lastState={"terminated": {
        "exitCode": 1, "reason": "Error", "message": "ValueError: invalid literal for int() with base 10: 'tcp://x'"}})
    [problem] = _rollout.container_problems([crashing, pod(name="ok"), pod(waiting="ContainerCreating", name="new"),
                                            pod(waiting="CrashLoopBackOff", deleting=True, name="old")])
    assert problem.startswith("Container c of pod vllm-1: CrashLoopBackOff: m (the container keeps crashing")
    assert problem.endswith("It last exited with code 1 (Error): ValueError: invalid literal for int() with base "
                            "10: 'tcp://x' (restarted 3 times)")
    assert _rollout.container_problems([]) == []


def _rs(revision, template_hash):
    return {"metadata": {"annotations": {"deployment.kubernetes.io/revision": revision},
                         "labels": {"pod-template-hash": template_hash}}}


def _pod_of(name, template_hash):
    return {"metadata": {"name": name, "labels": {"pod-template-hash": template_hash}}}


def test_current_pods_are_those_of_the_deployments_revision():
    from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import current_pods

    old, new = _pod_of("old", "aaa"), _pod_of("new", "bbb")
    dep = {"metadata": {"generation": 3, "annotations": {"deployment.kubernetes.io/revision": "2"}},
           "status": {"observedGeneration": 3}}
    rss = [_rs("1", "aaa"), _rs("2", "bbb")]
    assert current_pods(dep, rss, [old, new]) == [new]
    # Right after an apply the controller has not seen the change: the crash-looping pod of the
    # template being replaced is nobody's verdict yet.
    unseen = dict(dep, metadata=dict(dep["metadata"], generation=4))
    assert current_pods(unseen, rss, [old, new]) == []
    # Without the right to list ReplicaSets, every pod counts (as before).
    assert current_pods(dep, None, [old, new]) == [old, new]
