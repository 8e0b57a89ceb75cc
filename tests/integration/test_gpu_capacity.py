"""gpu_capacity against the sandbox: both kinds of student, check mode, and agreement with the real
scheduler and the real quota admission."""

from __future__ import annotations

import json
import uuid

import pytest

from sandboxlib import NS_ONLY, READER, gpu_workload, kubectl_apply, run_playbook, wait_until

FILL_NS = "sandbox-smoke"

PLAYBOOK = """
- hosts: %(hosts)s
  gather_facts: false
  tasks:
    - name: Capacity
      haw_icc.llm.gpu_capacity:
        kubeconfig: "{{ icc_kubeconfig }}"
        gpu_type: gpu-tesla-v100
        count: "{{ item }}"
      loop: %(counts)s
      register: capacity
"""


def apply(sandbox, objects, kubeconfig=None):
    proc = kubectl_apply(sandbox, objects, kubeconfig)
    assert proc.returncode == 0, proc.stderr


def deployment(sandbox, ns, gpus, node=None, kubeconfig=None, name=None):
    name = name or "cap-%s" % uuid.uuid4().hex[:6]
    selector = {"kubernetes.io/hostname": node} if node else None
    apply(sandbox, gpu_workload(name, ns, gpus=gpus, node_selector=selector, service=False), kubeconfig)
    return name


def pods(sandbox, ns, app):
    return sandbox.kubectl_json("-n", ns, "get", "pods", "-l", "haw-icc-test=%s" % app)["items"]


def delete(sandbox, ns, name, kubeconfig=None):
    sandbox.kubectl("-n", ns, "delete", "deployment", name, "--wait=false", kubeconfig=kubeconfig)
    wait_until(lambda: not pods(sandbox, ns, name), timeout=60, what="pods of %s gone" % name)


def outcome(sandbox, ns, name):
    """'running', 'insufficient' (Pending for lack of GPUs) or 'quota' (refused by the quota)."""
    for pod in pods(sandbox, ns, name):
        if pod["status"].get("phase") == "Running":
            return "running"
        for cond in pod["status"].get("conditions", []):
            if cond.get("reason") == "Unschedulable" and "Insufficient nvidia.com/gpu" in (cond.get("message") or ""):
                return "insufficient"
    events = sandbox.kubectl_json("-n", ns, "get", "events", "--field-selector", "reason=FailedCreate")["items"]
    if any(name in e["involvedObject"]["name"] and "exceeded quota" in e.get("message", "") for e in events):
        return "quota"
    return None


def state(sandbox):
    """What a read-only module must not change: every object of the student namespaces."""
    out = {}
    for ns in (READER, NS_ONLY):
        for item in sandbox.kubectl_json("-n", ns, "get", "deployments,services,configmaps,secrets,"
                                         "resourcequotas,pods")["items"]:
            out[(ns, item["kind"], item["metadata"]["name"])] = item["metadata"]["resourceVersion"]
    return out


def by_count(run, host):
    return {r["item"]: r for r in run.result("Capacity", host)["results"]}


def test_both_students_read_only_and_check_mode(sandbox):
    before = state(sandbox)
    for check in (False, True):
        run = run_playbook(PLAYBOOK % dict(hosts="students", counts="[1, 4]"), check=check)
        assert run.failed() == 0 and run.changed() == 0, run.stdout[-3000:]
        reader = by_count(run, READER)
        ns_only = by_count(run, NS_ONLY)
        assert reader[1]["cluster_view"] is True and [n["name"] for n in reader[1]["nodes"]] == ["gpu-v100-1", "gpu-v100-2"]
        assert reader[1]["quota"]["hard"] == 4 and reader[1]["totals"]["gpu-tesla-v100"]["capacity"] == 8
        node = reader[1]["nodes"][0]
        assert node["product"] == "Tesla-V100-PCIE-16GB" and node["memory_mib"] == 16384 and node["schedulable"]
        assert ns_only[1]["cluster_view"] is False and ns_only[1]["nodes"] == []
        assert "may not list nodes" in ns_only[1]["reason"] and ns_only[1]["quota"]["hard"] == 4
        assert ns_only[4]["fits"] is True and ns_only[4]["namespace_allocated"] == 0
    assert state(sandbox) == before


def test_fits_agrees_with_the_scheduler(sandbox):
    """Occupy 3 GPUs on gpu-v100-1 and 2 on gpu-v100-2 (another namespace), then every answer of the
    module for counts 1..5 is checked against what really happens to a pod asking for that many."""
    fillers = [deployment(sandbox, FILL_NS, 3, node="gpu-v100-1"), deployment(sandbox, FILL_NS, 2, node="gpu-v100-2")]
    try:
        for name in fillers:
            wait_until(lambda n=name: outcome(sandbox, FILL_NS, n) == "running", timeout=60, what="filler %s" % name)
        run = run_playbook(PLAYBOOK % dict(hosts=READER, counts="[1, 2, 3, 4, 5]"))
        assert run.failed() == 0, run.stdout[-3000:]
        answers = by_count(run, READER)
        assert answers[2]["largest_free_block"] == {"gpus": 2, "node": "gpu-v100-2"}
        assert [n["allocated"] for n in answers[1]["nodes"]] == [3, 2]
        assert answers[3]["reason"] == "no single v100 node has 3 free GPUs; largest is 2 on gpu-v100-2"
        assert answers[5]["reason"].startswith("quota allows 4 GPUs, you asked for 5")
        assert [answers[c]["fits"] for c in (1, 2, 3, 4, 5)] == [True, True, False, False, False]
        kc = sandbox.kubeconfig(READER)
        for count, answer in sorted(answers.items()):
            name = deployment(sandbox, READER, count, kubeconfig=kc)
            try:
                seen = wait_until(lambda n=name: outcome(sandbox, READER, n), timeout=60,
                                  what="scheduling outcome of %d GPUs" % count)
            finally:
                delete(sandbox, READER, name, kubeconfig=kc)
            expected = "running" if answer["fits"] else ("quota" if count > 4 else "insufficient")
            assert seen == expected, (count, answer["reason"], seen)
    finally:
        for name in fillers:
            delete(sandbox, FILL_NS, name)


def test_namespace_only_student_answers_from_quota_and_own_pods(sandbox):
    kc = sandbox.kubeconfig(NS_ONLY)
    own = deployment(sandbox, NS_ONLY, 1, kubeconfig=kc)
    try:
        wait_until(lambda: outcome(sandbox, NS_ONLY, own) == "running", timeout=60, what="own 1-GPU pod")
        wait_until(lambda: sandbox.kubectl_json("-n", NS_ONLY, "get", "resourcequota", "icc-quota")
                   ["status"]["used"].get("requests.nvidia.com/gpu") == "1", timeout=30, what="quota used 1")
        run = run_playbook(PLAYBOOK % dict(hosts=NS_ONLY, counts="[3, 4]"))
        assert run.failed() == 0, run.stdout[-3000:]
        answers = by_count(run, NS_ONLY)
        assert answers[3]["fits"] is True and answers[3]["cluster_view"] is False
        assert answers[4]["fits"] is False
        assert answers[4]["reason"].startswith("quota allows 3 GPUs, you asked for 4 (hard 4, used 1)")
        assert answers[4]["namespace_allocated"] == 1 and answers[4]["namespace_pods_with_gpus"] == 1
        # The quota admission agrees: a 4-GPU pod is refused while 1 GPU is in use.
        name = deployment(sandbox, NS_ONLY, 4, kubeconfig=kc)
        try:
            assert wait_until(lambda: outcome(sandbox, NS_ONLY, name), timeout=60, what="quota refusal") == "quota"
        finally:
            delete(sandbox, NS_ONLY, name, kubeconfig=kc)
    finally:
        delete(sandbox, NS_ONLY, own, kubeconfig=kc)


@pytest.mark.parametrize("args,needle", [
    ("count: 0", "count=0"),
    ("gpu_type: gpu-a100", "gpu_type"),
    ("namespace: Bad_NS", "namespace='Bad_NS'"),
])
def test_bad_input_fails_clearly(sandbox, args, needle):
    run = run_playbook("""
- hosts: %s
  gather_facts: false
  tasks:
    - name: Capacity
      haw_icc.llm.gpu_capacity:
        kubeconfig: "{{ icc_kubeconfig }}"
        %s
""" % (READER, args))
    res = run.result("Capacity", READER)
    assert res.get("failed") and needle in res["msg"], json.dumps(res)[:1000]


SIDECAR = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, namespace: %(ns)s, labels: {haw-icc-test: %(name)s}}
spec:
  nodeName: gpu-v100s-1
  initContainers:
  - {name: sidecar, image: registry.invalid/s:1, restartPolicy: Always, resources: {limits: {nvidia.com/gpu: 1}}}
  - {name: init, image: registry.invalid/i:1, resources: {requests: {nvidia.com/gpu: 3}, limits: {nvidia.com/gpu: 3}}}
  containers:
  - {name: main, image: registry.invalid/m:1, resources: {requests: {nvidia.com/gpu: 1, cpu: 10m}, limits: {nvidia.com/gpu: 1}}}
  - {name: other, image: registry.invalid/o:1, env: [{name: X, value: nvidia.com/gpu}]}
"""


def test_protobuf_and_json_readings_agree(sandbox):
    """The protobuf reader (_kproto) sees the same GPU requests as the JSON fallback, on the real API server."""
    from ansible_collections.haw_icc.llm.plugins.module_utils import _capacity
    from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

    names = [deployment(sandbox, FILL_NS, 1), deployment(sandbox, FILL_NS, 2)]
    pod_name = "cap-sidecar-%s" % uuid.uuid4().hex[:6]
    apply(sandbox, SIDECAR % dict(name=pod_name, ns=FILL_NS))
    try:
        wait_until(lambda: all(outcome(sandbox, FILL_NS, n) == "running" for n in names), timeout=60, what="pods")
        kube = build_client(kubeconfig=sandbox.admin_kubeconfig)
        proto = _capacity._slim_pods(kube, "/api/v1/pods")
        original = _capacity.PROTOBUF
        _capacity.PROTOBUF = "application/json"
        try:
            plain = _capacity._slim_pods(kube, "/api/v1/pods")
        finally:
            _capacity.PROTOBUF = original
        assert sorted(proto) == sorted(plain)
        assert ("gpu-v100s-1", FILL_NS, 4) in proto  # max(1+1, 1+3) with the sidecar running throughout
        assert sorted(r for _n, ns, r in proto if ns == FILL_NS) == [1, 2, 4]
    finally:
        for name in names:
            delete(sandbox, FILL_NS, name)
        sandbox.kubectl("-n", FILL_NS, "delete", "pod", pod_name, "--wait=false")
