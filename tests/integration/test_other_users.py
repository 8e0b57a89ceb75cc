"""Other users: student A's kubeconfig aimed at student B's namespace is refused by every playbook,
with a message naming B's namespace, and nothing of B's changes (the one place for this check).
Then the whole lifecycle as B, a student with rights in its own namespace only, is green: nothing of
the collection needs cluster-admin or any cluster-wide right, and the sandbox's RBAC proves that B
has none.

A is wstu001 (it may even read nodes and pods cluster-wide, so read-only playbooks get further in
B's namespace than with no cluster view); B is wstu002 (namespace-only). The details of each playbook
are tested elsewhere (test_workflows.py: scale and change_model with rollback as the cluster-reading
student; test_ops_playbooks.py: status, logs, test_gpu, access and cleanup on hand-made objects;
test_monitor.py: the sampling); here each runs once as B on what deploy.yml created.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from sandboxlib import (MODEL_TP, MODEL_TP_VARS, NS_ONLY, READER, REPO, changes,
                        cluster_snapshot, http_json, run_playbook, settled_cluster_snapshot)

A = READER  # wstu001-default
B = NS_ONLY  # wstu002-default
PLAYBOOKS = REPO / "playbooks"
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too


def ask(sandbox, namespace, model):
    """Ask B's engine ourselves, through its Service, with B's own kubeconfig."""
    proc, port = sandbox.port_forward(namespace, "svc/vllm", 8000, kubeconfig=sandbox.kubeconfig(namespace))
    try:
        return http_json("http://127.0.0.1:%d/v1/chat/completions" % port, {
            "model": model, "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of Germany?"}]})
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def b_deployed(sandbox):
    """Step 1 of B's lifecycle: B deploys an engine and Open WebUI with its own kubeconfig."""
    # TinyLlama's name (MODEL_TP): the lifecycle scales it to 4 GPUs, which SmolLM2's 9 heads refuse.
    run = run_playbook(PLAYBOOKS / "deploy.yml", limit=B, extra_vars=MODEL_TP_VARS)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert run.result("Ask the model a question through its Service", B)["answer"].strip()
    yield settled_cluster_snapshot(sandbox)
    run_playbook(PLAYBOOKS / "cleanup.yml", limit=B, extra_vars={"confirm": True, "purge": True})


def aimed_at_b(sandbox, playbook, tmp):
    """Run ``playbook`` as A (A's host in inventories/sandbox, so A's kubeconfig) on B's namespace."""
    extra = {"icc_namespace": B}
    if playbook == "login.yml":
        # The login module with A's downloaded kubeconfig, asked for B's namespace.
        src = tmp / "config.txt"
        src.write_bytes(pathlib.Path(sandbox.kubeconfig(A)).read_bytes())
        extra.update(icc_login_src=str(src), dest=str(tmp / "kube" / "config"))
        return run_playbook(PLAYBOOKS / playbook, extra_vars=extra)
    extra.update({
        "scale.yml": {"gpu_count": 2},
        "change_model.yml": {"model": SECOND},
        "cleanup.yml": {"confirm": True, "purge": True},
        "access.yml": {"access_api_port": 0, "access_webui_port": 0, "access_state_dir": str(tmp / "access")},
        "logs.yml": {"logs_save_dir": str(tmp / "logs")},
        "monitor.yml": {"gpu_monitor_count": 1, "gpu_monitor_interval": 1, "gpu_monitor_dest": str(tmp / "monitor")},
    }.get(playbook, {}))
    return run_playbook(PLAYBOOKS / playbook, limit=A, extra_vars=extra)


@pytest.mark.parametrize("playbook", ["login.yml", "deploy.yml", "scale.yml", "change_model.yml", "cleanup.yml",
                                      "access.yml", "logs.yml", "status.yml", "test_gpu.yml", "monitor.yml"])
def test_a_is_refused_in_bs_namespace(sandbox, b_deployed, tmp_path, playbook):
    before = cluster_snapshot(sandbox)
    run = aimed_at_b(sandbox, playbook, tmp_path)
    assert run.rc != 0, run.stdout[-3000:]
    msgs = run.failure_messages()
    assert msgs and B in msgs[-1] and "namespace" in msgs[-1], msgs
    assert "Traceback" not in msgs[-1] and "Exception '" not in msgs[-1], msgs[-1]
    # Issue 17: each failure once (no raw read error before the clear message, no re-raise by a rescue).
    assert len(msgs) == 1, msgs
    assert changes(before, cluster_snapshot(sandbox)) == {}
    written = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()]
    assert written in ([], ["config.txt"]), written  # login's copied source only


def test_bs_model_still_answers_after_the_refusals(sandbox, b_deployed):
    assert changes(b_deployed, cluster_snapshot(sandbox)) == {}
    assert ask(sandbox, B, MODEL_TP)["choices"][0]["message"]["content"].strip()


def test_students_have_no_cluster_admin_binding(sandbox):
    """The proof below means something only if B really has no cluster-wide rights: no
    ClusterRoleBinding gives a student (user infw*, group icc:students, or every authenticated user)
    cluster-admin, and B may not do anything outside its namespace."""
    students = {("User", "infwstu001"), ("User", "infwstu002"), ("Group", "icc:students")}  # A, B, their group
    everyone = {("Group", "system:authenticated"), ("Group", "system:unauthenticated")}
    bindings = sandbox.kubectl_json("get", "clusterrolebindings")["items"]
    assert bindings
    for binding in bindings:
        subjects = {(s["kind"], s["name"]) for s in binding.get("subjects") or []}
        if subjects & (students | everyone):
            assert binding["roleRef"]["name"] != "cluster-admin", binding["metadata"]["name"]
        if subjects & {("User", "infwstu002"), ("Group", "icc:students")}:
            raise AssertionError("B has a cluster-wide binding: %s" % json.dumps(binding["metadata"]["name"]))
    kc = sandbox.kubeconfig(B)
    for args in (["*", "*", "--all-namespaces"], ["create", "namespaces"], ["list", "nodes"],
                 ["create", "clusterrolebindings"], ["list", "pods", "-n", A], ["get", "secrets", "-n", A]):
        proc = sandbox.kubectl("auth", "can-i", *args, kubeconfig=kc, check=False)
        assert proc.stdout.strip() == "no", (args, proc.stdout, proc.stderr)
    assert sandbox.kubectl("auth", "can-i", "create", "deployments", "-n", B, kubeconfig=kc).stdout.strip() == "yes"


def test_namespace_only_student_runs_the_whole_lifecycle(sandbox, b_deployed, tmp_path):
    """deploy (the fixture) -> scale to 4 -> test_gpu -> scale to 1 -> change_model -> status -> logs ->
    monitor -> cleanup, all as B with B's namespace-only kubeconfig."""
    def ok(playbook, **extra):
        run = run_playbook(PLAYBOOKS / playbook, limit=B, extra_vars=extra or None)
        assert run.rc == 0, (playbook, run.failure_messages() or run.stdout[-3000:])
        return run

    # 4 GPUs: the sandbox's nvidia-smi stand-in shows a node's 4, so test_gpu is green for 4.
    scale = ok("scale.yml", gpu_count=4)
    assert scale.result("Ask the model a question through its Service", B)["answer"].strip()
    checks = ok("test_gpu.yml").result("Judge")["ansible_facts"]["test_gpu_checks"]
    assert all(c["ok"] for c in checks), checks
    # Back to 1 GPU, then SmolLM2 (9 attention heads: 1 or 3 GPUs).
    ok("scale.yml", gpu_count=1)
    change = ok("change_model.yml", model=SECOND)
    assert change.result("Ask the new model a question through its Service", B)["model"] == SECOND
    report = ok("status.yml").result("Read the namespace")["report"]
    engine = [w for w in report["workloads"] if w["name"] == "vllm"][0]
    assert engine["model"] == SECOND and engine["gpus"] == 1 and engine["ready"] == "1/1"
    logs = ok("logs.yml", logs_lines=20).result("Read and analyse the logs")["report"]
    assert {a["component"] for a in logs} == {"engine", "webui"}
    monitor = ok("monitor.yml", gpu_monitor_count=2, gpu_monitor_interval=1, gpu_monitor_dest=str(tmp_path))
    assert monitor.result("haw_icc.llm.gpu_monitor : Sample the GPUs and the engine")["summary"]["samples"] == 2
    ok("cleanup.yml", confirm=True, purge=True)
    left = sandbox.kubectl_json("-n", B, "get", "deployments,services,pvc,secrets,configmaps",
                                "-l", "app.kubernetes.io/part-of=haw-icc-llm")["items"]
    assert left == []
