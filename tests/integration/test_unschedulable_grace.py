"""A deploy whose pod cannot be scheduled for a moment waits instead of failing (rollout_status's
unschedulable grace), against the real scheduler and node lifecycle controller.

Every V100 GPU of the sandbox is held by two pods of another namespace that are being deleted and take
their whole termination grace period to stop (kwok's slow-termination stage, tests/cluster/README.md).
The scheduler counts their GPUs until they are gone, so the new engine pod is Unschedulable
("Insufficient nvidia.com/gpu") at first. The deploy, by a namespace-only student whose preflight sees
only its quota, waits and succeeds once the GPUs are back, and says that it waited and why.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from sandboxlib import MODEL, SANDBOX_DIR, kubectl_apply, live_pods, remove_collection, run_playbook, wait_until

DEPLOY_NS = "wcls020-default"
HOLDER_NS = ("wcls019-default", "wcls021-default")  # 4 GPUs each: the GPU quota of one namespace
GRACE = 45  # seconds the holders take to stop
ROLLOUT_TASK = "Wait until the engine is ready: vllm"  # its result carries the rollout verdict


def holder(namespace):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "gpu-holder", "namespace": namespace, "labels": {"haw-icc-test": "gpu-holder"},
                     "annotations": {"sandbox.haw-icc.de/fault": "slow-termination"}},
        "spec": {
            "terminationGracePeriodSeconds": GRACE,
            "tolerations": [{"key": "gpu-tesla-v100", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"nvidia.com/gpu.product": "Tesla-V100-PCIE-16GB"},
            "containers": [{"name": "holder", "image": "registry.invalid/holder:1.0", "resources": {
                "requests": {"nvidia.com/gpu": 4, "cpu": "100m", "memory": "128Mi"},
                "limits": {"nvidia.com/gpu": 4}}}],
        },
    }


def remove_holders(sandbox):
    for ns in HOLDER_NS:
        sandbox.kubectl("-n", ns, "delete", "pod", "gpu-holder", "--ignore-not-found", "--grace-period=0",
                        "--force", check=False)


def test_deploy_waits_for_gpus_that_terminating_pods_give_back(sandbox):
    remove_collection(sandbox, DEPLOY_NS)
    try:
        applied = kubectl_apply(sandbox, [holder(ns) for ns in HOLDER_NS])
        assert applied.returncode == 0, applied.stderr

        def running():
            pods = [p for ns in HOLDER_NS for p in live_pods(sandbox, ns, "haw-icc-test=gpu-holder")]
            return len(pods) == len(HOLDER_NS) and all(
                p["status"].get("phase") == "Running" and p["spec"].get("nodeName") for p in pods)
        wait_until(running, timeout=60, what="both GPU holders running")
        nodes = {sandbox.kubectl_json("-n", ns, "get", "pod", "gpu-holder")["spec"]["nodeName"] for ns in HOLDER_NS}
        assert nodes == {"gpu-v100-1", "gpu-v100-2"}, nodes

        for ns in HOLDER_NS:
            sandbox.kubectl("-n", ns, "delete", "pod", "gpu-holder", "--wait=false")
        deleted = time.monotonic()
        pod = sandbox.kubectl_json("-n", HOLDER_NS[0], "get", "pod", "gpu-holder")
        assert pod["metadata"].get("deletionTimestamp"), "the holder is not terminating"

        run = run_playbook("playbooks/deploy.yml", limit=DEPLOY_NS, extra_vars={"icc_webui": False})
        took = time.monotonic() - deleted
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        waited = run.result(ROLLOUT_TASK, DEPLOY_NS)["rollout"]
        assert waited["state"] == "available", waited
        waits = waited["unschedulable_waits"]
        assert len(waits) == 1 and waits[0]["scheduled"] is True, waits
        assert "Insufficient nvidia.com/gpu" in waits[0]["message"], waits
        assert waits[0]["seconds"] > 0, waits
        assert took >= GRACE - 5, "the deploy ended before the holders could have stopped (%.0f s)" % took
        assert run.result("Ask the model a question through its Service", DEPLOY_NS)["model"] == MODEL
        engine = live_pods(sandbox, DEPLOY_NS)
        assert len(engine) == 1 and engine[0]["spec"]["nodeName"] in ("gpu-v100-1", "gpu-v100-2")
    finally:
        remove_holders(sandbox)
        remove_collection(sandbox, DEPLOY_NS)


# --- a node that is away for a moment --------------------------------------------------------------

def kwok(signal):
    """Pause (STOP) or resume (CONT) kwok, the "kubelet" of every node: while it is paused no node
    renews its lease, as when the nodes lose the network for a moment."""
    pid = int((SANDBOX_DIR / "pids" / "kwok.pid").read_text())
    os.kill(pid, signal)


def node_taints(sandbox):
    return {n["metadata"]["name"]: sorted(t["key"] for t in n["spec"].get("taints") or [])
            for n in sandbox.kubectl_json("get", "nodes")["items"]}


def test_deploy_waits_for_nodes_that_come_back_after_a_blip(sandbox):
    """The nodes miss their heartbeats (kwok paused): the node lifecycle controller taints them
    node.kubernetes.io/unreachable, and the new engine pod cannot be scheduled. The nodes come back
    (kwok resumed) and the deploy succeeds. This is also the state that a restarted API server can
    leave for a few seconds, which once made a test's deploy fail at once on "0/4 nodes"."""
    remove_collection(sandbox, DEPLOY_NS)
    paused = False
    try:
        kwok(signal.SIGSTOP)
        paused = True
        wait_until(lambda: all("node.kubernetes.io/unreachable" in taints
                               for name, taints in node_taints(sandbox).items() if name.startswith("gpu-v100-")),
                   timeout=150, interval=1, what="the V100 nodes tainted unreachable")
        # No cache PVC: kwok, paused, would not bind it, and the scheduler would name that first.
        deploy = threading.Thread(target=lambda: setattr(deploy, "run", run_playbook(
            "playbooks/deploy.yml", limit=DEPLOY_NS, extra_vars={"icc_webui": False, "vllm_cache_emptydir": True})),
            daemon=True)
        deploy.start()

        def unschedulable():
            for pod in live_pods(sandbox, DEPLOY_NS):
                for cond in pod["status"].get("conditions") or []:
                    if cond.get("reason") == "Unschedulable":
                        return cond["message"]
            return None
        message = wait_until(lambda: not deploy.is_alive() or unschedulable(), timeout=120, interval=0.5,
                             what="the engine pod unschedulable on the unreachable taint")
        assert deploy.is_alive(), deploy.run.failure_messages() or deploy.run.stdout[-3000:]
        time.sleep(5)  # the deploy keeps waiting while the nodes are away
        assert deploy.is_alive(), "the deploy ended while the nodes were away: %s" % (
            deploy.run.failure_messages() or deploy.run.stdout[-3000:])
        kwok(signal.SIGCONT)
        paused = False
        deploy.join(300)
        assert not deploy.is_alive(), "the deploy did not end"
        run = deploy.run
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        waited = run.result(ROLLOUT_TASK, DEPLOY_NS)["rollout"]
        waits = waited["unschedulable_waits"]
        assert len(waits) == 1 and waits[0]["scheduled"] is True and waits[0]["seconds"] > 0, waits
        assert waited["elapsed"] >= 5, waited
        # kube-scheduler v1.35 does not name the taint ("3 node(s) had untolerated taint(s)"); a
        # namespace-only student cannot read the nodes, so the module waits instead of guessing.
        assert "untolerated taint" in waits[0]["message"], (waits, message)
        assert run.result("Ask the model a question through its Service", DEPLOY_NS)["model"] == MODEL
    finally:
        if paused:
            kwok(signal.SIGCONT)
        remove_collection(sandbox, DEPLOY_NS)
