"""Faults of the cluster itself, made for real in the sandbox (not through kwok stages):

- the API server stops in the middle of deploy.yml: the run ends (bounded: it may not hang) with a
  clear message about the unreachable API server for that namespace, not a traceback; once the API
  server is back, a re-run converges, the model answers and a third run changes nothing;
- the GPU node under a running engine is deleted: status.yml marks the pod's node as gone and
  llm_health names the node it cannot reach, while the pod is still bound to it; once Kubernetes
  has replaced the pod (pod garbage collection, then a new pod on another V100 node), status shows
  the new node and the model answers;
- two deploy.yml runs into one namespace at the same time: both end, and what they leave is one
  engine whose settings are wholly those of one run; a plain deploy converges and its re-run
  changes nothing.

Everything stopped or deleted here is brought back in a ``finally`` (one sandbox serves the whole
pytest session): the API server with ``sandbox.sh start-apiserver``, the nodes by re-applying
tests/cluster/manifests/nodes.yaml; ``sandboxlib.wait_settled`` then waits until nodes are Ready and
untainted again and the node lifecycle controller can no longer mark them unreachable.
"""

from __future__ import annotations

import json
import threading

from sandboxlib import (MODEL, MODEL_TP_VARS, NODES_YAML, READER, ask_engine, container_arg, engine_deployment,
                        live_pods, pod_ready, llm_health_play, remove_collection, run_playbook, sandbox_sh, wait_settled, wait_until)

API_NS = "wcls017-default"
NODE_NS = READER  # may read nodes: status.yml can tell that the pod's node is gone
RACE_NS = "wcls018-default"
BOUND = 300  # seconds: a deploy whose API server went away must have ended by then
NO_WEBUI = {"icc_webui": False}

HEALTH = llm_health_play(service="vllm", model=MODEL, stream=False, wait_timeout=0)


def in_background(**kwargs):
    """Start run_playbook(**kwargs) in a thread; join() it and read .run."""
    thread = threading.Thread(target=lambda: setattr(thread, "run", run_playbook(**kwargs)), daemon=True)
    thread.start()
    return thread


def finished(thread):
    thread.join(BOUND + 60)
    assert not thread.is_alive() and hasattr(thread, "run"), "the playbook did not end"
    return thread.run


def one_ready_engine(sandbox, namespace, timeout=180):
    def settled():
        pods = live_pods(sandbox, namespace)
        return len(pods) == 1 and pod_ready(pods[0]) and pods[0]
    return wait_until(settled, timeout=timeout, what="one ready engine pod in %s" % namespace)


def restore_nodes(sandbox):
    """Re-create deleted nodes (as sandbox.sh up does) and wait until the sandbox has settled again."""
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(NODES_YAML))
    wait_settled(sandbox, when="after restoring the nodes")


def assert_clear(messages, *needles):
    text = " ".join(messages)
    assert text, "no failure message"
    assert "Traceback (most recent call last)" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def assert_deployed_and_idempotent(sandbox, namespace, extra_vars=None):
    run = run_playbook("playbooks/deploy.yml", limit=namespace, extra_vars=extra_vars)
    assert run.rc == 0, run.failure_messages() or run.stdout[-4000:] + run.stderr[-2000:]
    assert run.result("Ask the model a question through its Service", namespace)["model"] == MODEL
    again = run_playbook("playbooks/deploy.yml", limit=namespace, extra_vars=extra_vars)
    assert again.rc == 0, again.failure_messages() or again.stdout[-4000:]
    assert again.changed(namespace) == 0
    return run


# --- the API server stops in the middle of a deploy --------------------------------------------------

def test_api_server_stopped_mid_deploy_fails_clearly_and_a_rerun_converges(sandbox):
    remove_collection(sandbox, API_NS)
    try:
        thread = in_background(playbook="playbooks/deploy.yml", limit=API_NS, extra_vars=NO_WEBUI, timeout=BOUND)
        created = ("-n", API_NS, "get", "deployment", "vllm")
        wait_until(lambda: not thread.is_alive() or sandbox.kubectl(*created, check=False).returncode == 0,
                   timeout=240, interval=0.2, what="the engine Deployment of the running deploy")
        assert thread.is_alive(), "deploy.yml ended before the API server was stopped: %s" % (
            thread.run.failure_messages() or thread.run.stdout[-3000:])
        sandbox_sh("stop-apiserver")
        try:
            run = finished(thread)
        finally:
            sandbox_sh("start-apiserver")
        # Ansible names the host, which is the namespace ("fatal: [wcls017-default]: FAILED!").
        assert run.rc != 0 and run.failed(API_NS) == 1, run.stdout[-3000:]
        assert "Traceback (most recent call last)" not in run.stderr, run.stderr[-3000:]
        text = assert_clear(run.failure_messages())
        server = "127.0.0.1:%s" % json.loads(sandbox.kubectl("config", "view", "--raw", "-o", "json").stdout)[
            "clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
        assert server in text, text
        assert "Cannot reach the Kubernetes API server" in text or "Connection refused" in text, text

        # The controllers and kwok reconnect: the cluster finishes what it was doing by itself (nodes
        # Ready again, the engine pod created and Ready), then a re-run converges. "Ready" alone is not
        # enough: the node lifecycle controller may still mark the nodes unreachable for up to its grace
        # period after the restart (this was why the next test's deploy once found 0/4 nodes).
        wait_settled(sandbox, when="after the API server came back")
        before = one_ready_engine(sandbox, API_NS)
        assert_deployed_and_idempotent(sandbox, API_NS, NO_WEBUI)
        assert one_ready_engine(sandbox, API_NS)["metadata"]["uid"] == before["metadata"]["uid"]
    finally:
        remove_collection(sandbox, API_NS)


# --- the GPU node under a running engine is deleted --------------------------------------------------

def observe_node_gone(sandbox, pod):
    """Delete the pod's node, then run status.yml and llm_health at once while the pod is still bound
    to the missing node. Returns (status run, health run), or None when Kubernetes replaced the pod
    before both ended (the window is about 40 s, pod garbage collection's quarantine)."""
    sandbox.kubectl("delete", "node", pod["spec"]["nodeName"], "--wait=false")
    status = in_background(playbook="playbooks/status.yml", limit=NODE_NS, timeout=BOUND)
    health = in_background(playbook=HEALTH, limit=NODE_NS, timeout=BOUND)
    status, health = finished(status), finished(health)
    still = [p for p in live_pods(sandbox, NODE_NS) if p["metadata"]["uid"] == pod["metadata"]["uid"]]
    return (status, health) if still else None


def test_gpu_node_deleted_under_a_running_engine_is_reported_and_replaced(sandbox):
    remove_collection(sandbox, NODE_NS)
    try:
        run = run_playbook("playbooks/deploy.yml", limit=NODE_NS, extra_vars=NO_WEBUI)
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        pod = one_ready_engine(sandbox, NODE_NS)
        seen = None
        for _attempt in range(3):  # a fresh window each time, should the machine be too slow for the first one
            seen = observe_node_gone(sandbox, pod)
            if seen:
                break
            restore_nodes(sandbox)
            pod = one_ready_engine(sandbox, NODE_NS)
        assert seen, "Kubernetes replaced the pod each time before status.yml and llm_health ended"
        status, health = seen
        node, name = pod["spec"]["nodeName"], pod["metadata"]["name"]

        assert status.rc == 0, status.failure_messages() or status.stdout[-3000:]
        report = status.result("Read the namespace", NODE_NS)["report"]
        engine = [w for w in report["workloads"] if w["name"] == "vllm"][0]
        assert engine["nodes"] == "%s (gone)" % node, report
        assert any(name in p and "node %s, which no longer exists" % node in p for p in report["problems"]), report
        table = "\n".join(status.result("Show the table", NODE_NS)["msg"])
        assert "Problems:" in table and "%s (gone)" % node in table, table

        assert health.rc != 0
        assert_clear(health.failure_messages(), "The port-forward to pod %s/%s on node %s failed" % (NODE_NS, name, node),
                     'pods "%s" not found' % node, "Node %s of the pod no longer exists" % node)

        # Pod garbage collection deletes the orphaned pod; the Deployment's new pod runs elsewhere.
        new = wait_until(lambda: [p for p in live_pods(sandbox, NODE_NS)
                                  if p["metadata"]["uid"] != pod["metadata"]["uid"] and pod_ready(p)],
                         timeout=240, interval=2, what="a new engine pod")[0]
        assert new["spec"]["nodeName"] != node
        assert not [p for p in live_pods(sandbox, NODE_NS) if p["metadata"]["uid"] == pod["metadata"]["uid"]]
        after = run_playbook("playbooks/status.yml", limit=NODE_NS)
        assert after.rc == 0, after.failure_messages()
        report = after.result("Read the namespace", NODE_NS)["report"]
        engine = [w for w in report["workloads"] if w["name"] == "vllm"][0]
        assert engine["nodes"] == new["spec"]["nodeName"] and engine["ready"] == "1/1", report
        assert report["problems"] == [], report
        answered = run_playbook(HEALTH, limit=NODE_NS)
        assert answered.rc == 0, answered.failure_messages()
        assert answered.result("Ask", NODE_NS)["answer"].strip()
    finally:
        restore_nodes(sandbox)
        remove_collection(sandbox, NODE_NS)


# --- two deploys into one namespace at once ----------------------------------------------------------

def test_two_deploys_into_one_namespace_at_once_leave_one_consistent_engine(sandbox):
    remove_collection(sandbox, RACE_NS)
    requests = {1: dict(NO_WEBUI, icc_gpu_count=1, icc_max_total_tokens=2048),
                3: dict(NO_WEBUI, icc_gpu_count=3, icc_max_total_tokens=1024)}
    try:
        threads = {gpus: in_background(playbook="playbooks/deploy.yml", limit=RACE_NS, extra_vars=ev, timeout=BOUND)
                   for gpus, ev in requests.items()}
        runs = {gpus: finished(t) for gpus, t in threads.items()}
        for gpus, run in runs.items():
            if run.rc != 0:  # the other run changed the Deployment while this one waited
                assert_clear(run.failure_messages(), "no longer carries the settings this run applied", RACE_NS)
        assert any(run.rc == 0 for run in runs.values()), {g: r.failure_messages() for g, r in runs.items()}

        pod = one_ready_engine(sandbox, RACE_NS)
        deployments = sandbox.kubectl_json("-n", RACE_NS, "get", "deployments", "-l",
                                           "app.kubernetes.io/component=engine")["items"]
        assert [d["metadata"]["name"] for d in deployments] == ["vllm"]
        _dep, container, _shm = engine_deployment(sandbox, RACE_NS)
        gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
        assert gpus in requests
        assert container_arg(container, "--tensor-parallel-size") == str(gpus)
        assert container_arg(container, "--max-model-len") == str(requests[gpus]["icc_max_total_tokens"])
        assert runs[gpus].rc == 0, "the run whose settings stayed must have succeeded"
        assert pod["spec"]["containers"][0]["args"] == container["args"]
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == str(gpus)
        service = sandbox.kubectl_json("-n", RACE_NS, "get", "service", "vllm")
        assert all(pod["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())
        assert ask_engine(sandbox, RACE_NS, MODEL)["choices"][0]["message"]["content"].strip()

        # The other interleaving, made certain: run A's new pod never becomes ready (kwok's never-ready
        # stage), so A is still waiting when run B, a plain deploy, replaces A's settings with its own.
        slow = in_background(playbook="playbooks/deploy.yml", limit=RACE_NS, timeout=BOUND, extra_vars=dict(
            NO_WEBUI, icc_gpu_count=4, **MODEL_TP_VARS, vllm_pod_annotations={
                "sandbox.haw-icc.de/fault": "never-ready",
                "sandbox.haw-icc.de/fault-if-args-contain": " --tensor-parallel-size 4 "}))

        def tensor_parallel():
            return container_arg(engine_deployment(sandbox, RACE_NS)[1], "--tensor-parallel-size")
        wait_until(lambda: not slow.is_alive() or tensor_parallel() == "4", timeout=240, interval=0.5,
                   what="run A's Deployment")
        assert slow.is_alive(), slow.run.failure_messages() or slow.run.stdout[-3000:]
        assert_deployed_and_idempotent(sandbox, RACE_NS, NO_WEBUI)
        overtaken = finished(slow)
        assert overtaken.rc != 0
        assert_clear(overtaken.failure_messages(), "The vLLM Deployment %s/vllm no longer carries the settings this run "
                     "applied" % RACE_NS)
        dep, container, _shm = engine_deployment(sandbox, RACE_NS)
        assert container_arg(container, "--tensor-parallel-size") == "1"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert "sandbox.haw-icc.de/fault" not in (dep["spec"]["template"]["metadata"].get("annotations") or {})
        one_ready_engine(sandbox, RACE_NS)
    finally:
        remove_collection(sandbox, RACE_NS)
