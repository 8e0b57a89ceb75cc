"""playbooks/test_gpu.yml with test_gpu_throwaway=true: a separate minimal vLLM deployment (gpu-test,
1 GPU, TinyLlama) is deployed with the vllm role, checked like the user's engine, asked a question
through llm_health and always removed; the user's own engine is never touched.

In the sandbox the engine answers under the name TinyLlama/TinyLlama-1.1B-Chat-v1.0 with the SmolLM2
weights (tests/cluster/models.txt, a test double described in tests/cluster/README.md), and the
nvidia-smi test double is told to show 1 GPU (its control file), as a 1-GPU pod would see.
Namespace wcls024-default, which no other test uses.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from sandboxlib import MODEL, REPO, gpu_workload, kubectl_apply, namespace_snapshot, remove_collection, run_playbook, wait_until

NS = "wcls024-default"
NAME = "gpu-test"
TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
ALL_KINDS = "deployments,replicasets,pods,services,persistentvolumeclaims,secrets,configmaps"
TEST_GPU = REPO / "playbooks" / "test_gpu.yml"

# The user's own engine, deployed the way deploy.yml does it: with the vllm role (1 GPU).
USER_ENGINE = """
- name: The user's own engine
  hosts: all
  gather_facts: false
  module_defaults:
    group/kubernetes.core.k8s:
      kubeconfig: "{{ icc_kubeconfig }}"
    group/haw_icc.llm.icc:
      kubeconfig: "{{ icc_kubeconfig }}"
  roles:
    - role: haw_icc.llm.vllm
      vars:
        vllm_gpu_count: 1
        vllm_cpu: "1"
        vllm_memory: 8Gi  # the least the vLLM rules allow with the default 4 GiB swap
"""


def remove_all(sandbox):
    remove_collection(sandbox, NS)
    sandbox.kubectl("-n", NS, "delete", "deployment,service", "-l", "haw-icc-test", "--wait=true",
                    "--timeout=60s", check=False, timeout=90)
    sandbox.kubectl("-n", NS, "delete", "service", NAME, "--ignore-not-found", check=False)


def left_over(sandbox):
    """Every object of the namespace whose name starts with the throwaway name."""
    items = sandbox.kubectl_json("-n", NS, "get", ALL_KINDS)["items"]
    return sorted("%s/%s" % (i["kind"], i["metadata"]["name"]) for i in items
                  if i["metadata"]["name"].startswith(NAME))


def identity(sandbox):
    """What must not change on the user's engine: its Deployment's uid, generation and
    resourceVersion, and its pod."""
    dep = sandbox.kubectl_json("-n", NS, "get", "deployment", "vllm")
    pods = sandbox.kubectl_json("-n", NS, "get", "pods", "-l", "app.kubernetes.io/instance=vllm")["items"]
    return (dep["metadata"]["uid"], dep["metadata"]["generation"], dep["metadata"]["resourceVersion"],
            sorted(p["metadata"]["uid"] for p in pods))


def with_throwaway(check=False, **extra):
    return run_playbook(TEST_GPU, limit=NS, extra_vars=dict({"test_gpu_throwaway": True}, **extra), check=check)


def ran(run, task):
    """Whether a task ran (was not skipped) for the namespace."""
    return any(not r.get("skipped") for r in run.task_results(task, NS))


@pytest.fixture(scope="module")
def user_engine(sandbox):
    control = pathlib.Path(sandbox.root) / "nvidia-smi-standin.json"
    saved = control.read_text() if control.exists() else None
    control.write_text(json.dumps({"gpus": 1}))  # a 1-GPU pod sees 1 GPU
    remove_all(sandbox)
    try:
        run = run_playbook(USER_ENGINE, limit=NS)
        assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
        yield identity(sandbox)
    finally:
        remove_all(sandbox)
        if saved is None:
            control.unlink()
        else:
            control.write_text(saved)


def test_throwaway_is_deployed_checked_asked_and_removed(sandbox, user_engine):
    before = namespace_snapshot(sandbox, NS)
    run = with_throwaway()
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]

    checks = {c["name"]: c for c in run.result("Collect the checks")["ansible_facts"]["test_gpu_all_checks"]}
    prefix = "throwaway %s: " % NAME
    assert all(c["ok"] for c in checks.values()), checks
    for name in ("nvidia-smi", "GPUs seen = GPUs requested", "Tensor parallel = GPUs", "/dev/shm", "API answers",
                 "Engine log"):
        assert name in checks and prefix + name in checks, sorted(checks)
    assert checks[prefix + "GPUs seen = GPUs requested"]["detail"] == "pod sees 1, requests 1, limit 1"

    # The question of each target went to its own Service; the throwaway's was answered by its model name.
    own, throwaway = run.task_results("Ask the API a question through the engine Service, timed")
    assert own["model"] == MODEL and own["answer"].strip()
    assert throwaway["model"] == TINYLLAMA and throwaway["answer"].strip()
    assert TINYLLAMA in throwaway["models"]
    assert "model %s answered" % TINYLLAMA in checks[prefix + "API answers"]["detail"]

    # The throwaway was what the issue asks for: 1 GPU, fp16, a small context, no PVC.
    (pod,) = run.result("Find the throwaway pod")["pods"]
    container = pod["spec"]["containers"][0]
    args = container["args"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == NAME
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert args[args.index("--served-model-name") + 1] == TINYLLAMA
    assert args[args.index("--dtype") + 1] == "half" and args[args.index("--max-model-len") + 1] == "2048"
    cache = [v for v in pod["spec"]["volumes"] if v["name"] == "cache"][0]
    assert "emptyDir" in cache and "persistentVolumeClaim" not in cache

    # Nothing of it is left (its removal waited for its pods; no "FAILED - RETRYING" of a poll), and the
    # user's engine is exactly as before.
    assert left_over(sandbox) == []
    assert run.retried_tasks() == []
    assert identity(sandbox) == user_engine
    after = namespace_snapshot(sandbox, NS)
    assert {k: v for k, v in after.items() if not k.startswith("Pod/")} == \
        {k: v for k, v in before.items() if not k.startswith("Pod/")}


def test_no_free_gpu_is_refused_before_anything_is_created(sandbox, user_engine):
    """The user's engine holds 1 GPU and another workload 3: the quota of 4 is used up."""
    proc = kubectl_apply(sandbox, gpu_workload("quota-filler", NS, gpus=3, service=False),
                         kubeconfig=sandbox.kubeconfig(NS))
    assert proc.returncode == 0, proc.stderr
    try:
        wait_until(lambda: sandbox.kubectl_json("-n", NS, "get", "pods", "-l", "haw-icc-test=quota-filler")["items"],
                   timeout=60, what="the filler pod")
        before = namespace_snapshot(sandbox, NS)
        run = with_throwaway()
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "test_gpu_throwaway refused in %s: no free gpu-tesla-v100 GPU" % NS in msg, msg
        assert "quota" in msg and "Nothing was changed" in msg, msg
        assert not ran(run, "Deploy the throwaway vLLM server") and not ran(run, "Judge")
        assert left_over(sandbox) == []
        assert namespace_snapshot(sandbox, NS) == before
        assert identity(sandbox) == user_engine
    finally:
        sandbox.kubectl("-n", NS, "delete", "deployment", "quota-filler", "--wait=true", "--timeout=60s",
                        check=False, timeout=90)


def test_a_name_in_use_is_refused_and_left_alone(sandbox, user_engine):
    """An object of the user that carries the throwaway name is never touched."""
    proc = kubectl_apply(sandbox, [{"apiVersion": "v1", "kind": "Service",
                                    "metadata": {"name": NAME, "namespace": NS},
                                    "spec": {"selector": {"app": "mine"}, "ports": [{"port": 80}]}}],
                         kubeconfig=sandbox.kubeconfig(NS))
    assert proc.returncode == 0, proc.stderr
    try:
        before = namespace_snapshot(sandbox, NS)
        run = with_throwaway()
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "test_gpu_throwaway refused in %s: Service named %s(-cache) already exist(s)" % (NS, NAME) in msg, msg
        assert "test_gpu_throwaway_name" in msg and "Nothing was changed" in msg
        assert namespace_snapshot(sandbox, NS) == before
        assert identity(sandbox) == user_engine
    finally:
        sandbox.kubectl("-n", NS, "delete", "service", NAME, "--ignore-not-found", check=False)


def test_check_mode_runs_only_the_preflight(sandbox, user_engine):
    before = namespace_snapshot(sandbox, NS)
    run = with_throwaway(check=True)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert run.changed() == 0
    assert "%s would be deployed, tested and removed" % NAME in run.result("Note what check mode leaves out")["msg"]
    assert not ran(run, "Deploy the throwaway vLLM server")
    assert left_over(sandbox) == []
    assert namespace_snapshot(sandbox, NS) == before
    assert identity(sandbox) == user_engine


def test_bad_throwaway_settings_are_refused_by_name(sandbox, user_engine):
    before = namespace_snapshot(sandbox, NS)
    run = with_throwaway(test_gpu_throwaway_gpu_type="gpu-a100", test_gpu_throwaway_max_model_len="lots")
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    assert "test_gpu_throwaway_gpu_type=gpu-a100" in msg and "gpu-tesla-v100 or gpu-tesla-v100s" in msg, msg
    assert "test_gpu_throwaway_max_model_len=lots" in msg and "Nothing was changed" in msg, msg
    assert not ran(run, "Ask whether a GPU is free for the throwaway deployment")
    assert namespace_snapshot(sandbox, NS) == before and left_over(sandbox) == []
