"""Smoke checks that prove the sandbox behaves like the ICC where the collection depends on it."""

from __future__ import annotations

import uuid

import pytest

from sandboxlib import MODEL, NS_ONLY, READER, gpu_workload, http_json, kubectl_apply, wait_until


def pods_of(sandbox, ns, app):
    return sandbox.kubectl_json("-n", ns, "get", "pods", "-l", "haw-icc-test=%s" % app)["items"]


def test_nodes_look_like_the_icc(sandbox):
    nodes = {n["metadata"]["name"]: n for n in sandbox.kubectl_json("get", "nodes")["items"]}
    v100 = [n for n in nodes.values()
            if any(t["key"] == "gpu-tesla-v100" for t in n["spec"].get("taints", []))]
    v100s = [n for n in nodes.values()
             if any(t["key"] == "gpu-tesla-v100s" for t in n["spec"].get("taints", []))]
    cpu = [n for n in nodes.values() if "nvidia.com/gpu" not in n["status"]["capacity"]]
    assert len(v100) >= 2 and len(v100s) >= 1 and len(cpu) >= 1
    for node in v100 + v100s:
        labels = node["metadata"]["labels"]
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
        assert labels["nvidia.com/gpu.compute.major"] == "7"
        assert labels["nvidia.com/gpu.count"] == "4"
        assert labels["nvidia.com/gpu.product"].startswith("Tesla-V100")
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
    assert v100[0]["metadata"]["labels"]["nvidia.com/gpu.memory"] == "16384"
    assert v100s[0]["metadata"]["labels"]["nvidia.com/gpu.memory"] == "32768"


def test_scheduler_counts_gpus(sandbox):
    """3 replicas x 4 GPUs on two 4-GPU V100 nodes: two run, one is Pending for lack of GPUs."""
    name = "smoke-gpu-%s" % uuid.uuid4().hex[:6]
    proc = kubectl_apply(sandbox, gpu_workload(name, "sandbox-smoke", gpus=4, replicas=3))
    assert proc.returncode == 0, proc.stderr
    try:
        def settled():
            pods = pods_of(sandbox, "sandbox-smoke", name)
            running = [p for p in pods if p["status"].get("phase") == "Running"]
            pending = [p for p in pods if p["status"].get("phase") == "Pending"
                       and any("Insufficient nvidia.com/gpu" in (c.get("message") or "")
                               for c in p["status"].get("conditions", []))]
            return (running, pending) if len(running) == 2 and len(pending) == 1 else None

        running, _pending = wait_until(settled, timeout=60, what="2 Running + 1 Pending pods")
        nodes = sorted(p["spec"]["nodeName"] for p in running)
        assert nodes == ["gpu-v100-1", "gpu-v100-2"]
    finally:
        sandbox.kubectl("-n", "sandbox-smoke", "delete", "deployment,service", name, "--wait=false")


@pytest.mark.parametrize("student,other", [(READER, NS_ONLY), (NS_ONLY, READER)])
def test_student_is_confined_to_own_namespace(sandbox, student, other):
    kc = sandbox.kubeconfig(student)
    own = sandbox.kubectl("-n", student, "auth", "can-i", "create", "deployments", kubeconfig=kc,
                          check=False)
    assert own.stdout.strip() == "yes"
    denied = sandbox.kubectl("-n", other, "get", "secrets", kubeconfig=kc, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower() and other in denied.stderr
    write = sandbox.kubectl("-n", other, "create", "configmap", "intruder", kubeconfig=kc,
                            check=False)
    assert write.returncode != 0 and "forbidden" in write.stderr.lower()
    quota = sandbox.kubectl_json("-n", student, "get", "resourcequota", kubeconfig=kc)["items"]
    assert quota[0]["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"


def test_node_read_rights_differ(sandbox):
    reader = sandbox.kubectl("get", "nodes", kubeconfig=sandbox.kubeconfig(READER), check=False)
    assert reader.returncode == 0 and "gpu-v100-1" in reader.stdout
    ns_only = sandbox.kubectl("get", "nodes", kubeconfig=sandbox.kubeconfig(NS_ONLY), check=False)
    assert ns_only.returncode != 0 and "forbidden" in ns_only.stderr.lower()


def test_port_forward_reaches_the_real_model(sandbox):
    """A student's port-forward to an engine Service reaches llama.cpp serving SmolLM2."""
    name = "smoke-engine-%s" % uuid.uuid4().hex[:6]
    kc = sandbox.kubeconfig(NS_ONLY)
    proc = kubectl_apply(sandbox, gpu_workload(name, NS_ONLY), kubeconfig=kc)
    assert proc.returncode == 0, proc.stderr
    try:
        sandbox.kubectl("-n", NS_ONLY, "rollout", "status", "deployment/%s" % name,
                        "--timeout=60s", kubeconfig=kc)
        pf, port = sandbox.port_forward(NS_ONLY, "svc/%s" % name, 8000, kubeconfig=kc)
        try:
            models = http_json("http://127.0.0.1:%d/v1/models" % port)
            assert MODEL in [m["id"] for m in models["data"]]
            chat = http_json("http://127.0.0.1:%d/v1/chat/completions" % port, {
                "model": MODEL, "max_tokens": 16, "temperature": 0,
                "messages": [{"role": "user", "content": "What is the capital of France?"}]})
            answer = chat["choices"][0]["message"]["content"]
            assert answer.strip(), chat
            assert chat["usage"]["completion_tokens"] > 0
        finally:
            pf.terminate()
    finally:
        sandbox.kubectl("-n", NS_ONLY, "delete", "deployment,service", name, "--wait=false",
                        kubeconfig=kc)
