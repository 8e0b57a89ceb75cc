"""The user's workflows as playbooks, end to end in the sandbox with a student's own kubeconfig:
login.yml, deploy.yml (preflight refusals leave the cluster untouched), scale.yml (1 -> 2 -> 1 and a
scale beyond capacity refused before any change) and change_model.yml (a working change, then a
failing one that rolls back so the old model answers again; the WebUI and its PVC survive)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from sandboxlib import MODEL, READER, REPO, http_json, run_playbook, wait_until

NS = READER  # wstu001-default: a student with a read-only cluster view
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too
# On the Hub (its double), so the preflight lets it pass, but not served by the sandbox engine
# (tests/cluster/models.txt): the new pod never answers for it, as when a model fails to load.
MISSING = "HuggingFaceTB/SmolLM2-360M-Instruct"
PART_OF = "app.kubernetes.io/part-of=haw-icc-llm"
KINDS = "deployments,replicasets,pods,services,persistentvolumeclaims,secrets,configmaps"


def snapshot(sandbox):
    """Every object of the namespace (name -> resourceVersion)."""
    items = sandbox.kubectl_json("-n", NS, "get", KINDS)["items"]
    return {"%s/%s" % (i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"] for i in items}


def remove_all(sandbox):
    sandbox.kubectl("-n", NS, "delete", "deployment,service,pvc,secret,configmap", "-l", PART_OF,
                    "--wait=true", "--timeout=120s", check=False, timeout=150)
    sandbox.kubectl("-n", NS, "delete", "deployment", "-l", "haw-icc-test=filler", "--wait=true",
                    "--timeout=60s", check=False, timeout=90)


def filler(sandbox, gpus):
    """A GPU Deployment of the student that is not the collection's (it uses quota)."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "filler", "namespace": NS, "labels": {"haw-icc-test": "filler"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"haw-icc-test": "filler"}},
                     "template": {"metadata": {"labels": {"haw-icc-test": "filler"}}, "spec": {
                         "tolerations": [{"key": "gpu-tesla-v100", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [{"name": "x", "image": "busybox:1.36",
                                         "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "100m", "memory": "64Mi"},
                                                       "limits": {"nvidia.com/gpu": gpus, "cpu": "100m", "memory": "64Mi"}}}]}}}}
    proc = subprocess.run([sandbox.kubectl_path, "--kubeconfig", sandbox.kubeconfig(NS), "apply", "-f", "-"],
                          input=json.dumps(body), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    sandbox.kubectl("-n", NS, "rollout", "status", "deployment/filler", "--timeout=60s", timeout=90)


def engine(sandbox):
    dep = sandbox.kubectl_json("-n", NS, "get", "deployment", "vllm")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    shm = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "dshm"][0]
    return dep, container, shm["emptyDir"]["sizeLimit"]


def arg(container, flag):
    args = container["args"]
    return args[args.index(flag) + 1]


def ask(sandbox, model):
    """Ask the engine behind the Service ourselves (not through the playbook)."""
    proc, port = sandbox.port_forward(NS, "svc/vllm", 8000, kubeconfig=sandbox.kubeconfig(NS))
    try:
        return http_json("http://127.0.0.1:%d/v1/chat/completions" % port, {
            "model": model, "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of Germany?"}]})
    finally:
        proc.kill()


def test_login_from_a_copied_student_kubeconfig(sandbox, tmp_path):
    src = tmp_path / "config.txt"
    shutil.copy(sandbox.kubeconfig(NS), src)
    dest = tmp_path / "kube" / "config"
    extra = {"icc_login_src": str(src), "dest": str(dest), "icc_user_id": "infwstu001"}
    first = run_playbook("playbooks/login.yml", extra_vars=extra)
    assert first.rc == 0, first.stdout[-3000:]
    shown = "\n".join(first.result("Show the namespace, the rights and the quota")["msg"])
    assert "Namespace %s" % NS in shown
    assert "Rights: all the collection needs" in shown and "cluster view (nodes, all pods): yes" in shown
    assert "GPU quota:" in shown and "of 4 free" in shown
    assert dest.stat().st_mode & 0o777 == 0o600
    # The written kubeconfig works on its own, in the right namespace.
    proc = sandbox.kubectl("get", "resourcequota", "icc-quota", "-o", "name", kubeconfig=str(dest))
    assert proc.stdout.strip() == "resourcequota/icc-quota"
    again = run_playbook("playbooks/login.yml", extra_vars=extra)
    assert again.rc == 0 and again.changed() == 0


REFUSALS = [
    ({"vllm_dtype": "bfloat16"}, ["vllm_dtype=", "bfloat16 needs compute capability 8.0"]),
    ({"icc_quantization": "awq"}, ["vllm_quantization=", "awq", "gptq"]),
    ({"icc_engine": "tgi", "icc_gpu_count": 2}, ["tgi_gpu_count=", "TGI cannot shard"]),
    ({"icc_gpu_count": 5}, ["vllm_gpu_count=", "1 to 4"]),
    ({"icc_model": "meta-llama/Llama-2-13b-chat-hf"}, ["weights do not fit", "icc_quantization=gptq", "icc_hf_token"]),
    ({"icc_model": "meta-llama/Llama-3.2-1B-Instruct"}, ["icc_hf_token is empty", "gated"]),
    ({"icc_engine": "ollama"}, ["icc_engine=ollama", "vllm or tgi"]),
]


@pytest.mark.parametrize("extra,needles", REFUSALS, ids=[",".join(e) for e, _n in REFUSALS])
def test_preflight_refusals_leave_the_namespace_untouched(sandbox, extra, needles):
    before = snapshot(sandbox)
    run = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars=extra)
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    for needle in needles:
        assert needle in msg, msg
    assert run.changed(NS) == 0
    assert snapshot(sandbox) == before


def test_deploy_check_mode_creates_nothing(sandbox):
    remove_all(sandbox)
    before = snapshot(sandbox)
    run = run_playbook("playbooks/deploy.yml", limit=NS, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert "would deploy %s with vllm" % MODEL in "\n".join(run.result("Summary", NS)["msg"])
    assert snapshot(sandbox) == before


def test_preflight_refuses_more_gpus_than_the_quota_leaves(sandbox):
    remove_all(sandbox)
    try:
        filler(sandbox, 2)
        before = snapshot(sandbox)
        run = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars={"icc_gpu_count": 3})
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "cannot be scheduled now" in msg and "quota allows 2 GPUs" in msg, msg
        assert snapshot(sandbox) == before
    finally:
        remove_all(sandbox)


@pytest.fixture(scope="module")
def deployed(sandbox):
    remove_all(sandbox)
    run = run_playbook("playbooks/deploy.yml", limit=NS)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    health = run.result("Ask the model a question through its Service", NS)
    assert health["model"] == MODEL and health["answer"].strip()
    summary = "\n".join(run.result("Summary", NS)["msg"])
    assert "deployed %s with vllm on 1 x gpu-tesla-v100 (node gpu-v" % MODEL in summary
    # The next step, as a command that runs wherever the collection is installed.
    assert "API and WebUI: ansible-playbook -i %s haw_icc.llm.access -l %s" % (REPO / "inventories" / "sandbox", NS) in summary
    yield run
    remove_all(sandbox)


def test_scale_up_and_down_changes_gpus_tp_and_shm_together(sandbox, deployed):
    # SmolLM2-135M has 9 attention heads and 3 KV heads: 3 GPUs divide them, 2 and 4 do not.
    before = snapshot(sandbox)
    check = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3}, check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert snapshot(sandbox) == before

    up = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
    assert up.rc == 0, up.stdout[-4000:]
    _dep, container, shm = engine(sandbox)
    res = container["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "3"
    assert arg(container, "--tensor-parallel-size") == "3" and shm == "24Gi"
    assert arg(container, "--model") == MODEL
    assert up.result("Ask the model a question through its Service", NS)["answer"].strip()
    pods = sandbox.kubectl_json("-n", NS, "get", "pods", "-l", "app.kubernetes.io/component=engine")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1 and live[0]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "3"
    again = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
    assert again.rc == 0 and again.changed(NS) == 0

    down = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 1, "shm_size": "4Gi"})
    assert down.rc == 0, down.stdout[-4000:]
    _dep, container, shm = engine(sandbox)
    res = container["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"
    assert arg(container, "--tensor-parallel-size") == "1" and shm == "4Gi"
    assert ask(sandbox, MODEL)["choices"][0]["message"]["content"].strip()


def test_scale_beyond_capacity_is_refused_before_any_change(sandbox, deployed):
    try:
        filler(sandbox, 2)  # quota 4: engine 1 + filler 2 = 3 used
        before = snapshot(sandbox)
        # 3 GPUs fit only if the engine's own GPU is counted as released: quota 4 - 3 + 1 = 2 < 3.
        run = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "quota allows 2 GPUs once the current pod's 1 are released" in msg, msg
        assert snapshot(sandbox) == before
        # 2 GPUs would fit the quota, but vLLM cannot split SmolLM2's 9 attention heads over 2 GPUs.
        two = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 2})
        assert two.rc != 0
        msg = " ".join(two.failure_messages())
        assert "vllm_gpu_count=2" in msg and "9 attention heads" in msg and "Use 1 or 3" in msg, msg
        assert snapshot(sandbox) == before
        # With a filler of 1, 3 GPUs fit that way (2 free + the engine's own 1) although only 2 are free now.
        sandbox.kubectl("-n", NS, "delete", "deployment", "filler", "--cascade=foreground", "--wait=true",
                        "--timeout=60s", timeout=90)
        filler(sandbox, 1)
        ok = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
        assert ok.rc == 0, ok.stdout[-4000:]
        assert arg(engine(sandbox)[1], "--tensor-parallel-size") == "3"
        # More GPUs than a node has: refused by the engine rules, naming the variable.
        five = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 5})
        assert five.rc != 0 and "vllm_gpu_count=5" in " ".join(five.failure_messages())
        bad = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": "two"})
        assert bad.rc != 0 and "gpu_count=two" in " ".join(bad.failure_messages())
    finally:
        sandbox.kubectl("-n", NS, "delete", "deployment", "filler", "--wait=true", "--timeout=60s",
                        check=False, timeout=90)
    back = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 1})
    assert back.rc == 0, back.stdout[-4000:]


def test_change_model_then_a_failing_change_rolls_back(sandbox, deployed):
    webui = sandbox.kubectl_json("-n", NS, "get", "deployment", "webui")
    webui_pvc = sandbox.kubectl_json("-n", NS, "get", "pvc", "webui-data")

    changed = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={"model": SECOND})
    assert changed.rc == 0, changed.stdout[-4000:]
    health = changed.result("Ask the new model a question through its Service", NS)
    assert health["model"] == SECOND and health["answer"].strip()
    _dep, container, _shm = engine(sandbox)
    assert arg(container, "--model") == SECOND and arg(container, "--served-model-name") == SECOND

    # A model the new pod cannot serve: llm_health gives up, and the change is rolled back.
    failing = run_playbook("playbooks/change_model.yml", limit=NS,
                           extra_vars={"model": MISSING, "icc_health_timeout": 15})
    assert failing.rc != 0
    msg = " ".join(failing.failure_messages())
    assert "Changing %s to %s failed" % (NS, MISSING) in msg and "Rolled back to %s" % SECOND in msg, msg
    restored = failing.result("Ask the previous model a question again", NS)
    assert restored["model"] == SECOND and restored["answer"].strip()
    _dep, container, _shm = engine(sandbox)
    assert arg(container, "--model") == SECOND

    def settled():
        pods = sandbox.kubectl_json("-n", NS, "get", "pods", "-l", "app.kubernetes.io/component=engine")["items"]
        return len(pods) == 1 and pods[0]["status"].get("phase") == "Running"
    wait_until(settled, timeout=60, what="one engine pod")
    answer = ask(sandbox, SECOND)
    assert answer["model"] and answer["choices"][0]["message"]["content"].strip()

    # The WebUI was not touched: same Deployment generation, same chat history PVC.
    webui_after = sandbox.kubectl_json("-n", NS, "get", "deployment", "webui")
    assert webui_after["metadata"]["uid"] == webui["metadata"]["uid"]
    assert webui_after["metadata"]["generation"] == webui["metadata"]["generation"]
    assert sandbox.kubectl_json("-n", NS, "get", "pvc", "webui-data")["metadata"]["uid"] == webui_pvc["metadata"]["uid"]

    # Bad input is refused before anything changes, naming the -e variable.
    bad = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={"model": "not a model; rm -rf"})
    assert bad.rc != 0 and "model='not a model; rm -rf': not a Hugging Face model id" in " ".join(bad.failure_messages())

    # A re-deploy returns to the inventory's model.
    redeploy = run_playbook("playbooks/deploy.yml", limit=NS)
    assert redeploy.rc == 0, redeploy.stdout[-3000:]
    assert redeploy.result("Ask the model a question through its Service", NS)["model"] == MODEL
