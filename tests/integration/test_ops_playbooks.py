"""Integration tests of the operations playbooks: status, logs, test_gpu, access, cleanup.

They run against objects the tests create themselves with the student's own kubeconfig (a labelled
engine Deployment with GPUs and a V100 toleration, its Service, a PVC and Secrets), not against the
roles, so they test the playbooks' label-based discovery on its own. Class namespaces: OWN is the student,
CRASH gets the crash-log fixture and a GPU mismatch. Another student's namespace: test_other_users.py.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
import urllib.error

import pytest

from sandboxlib import MODEL_TP, REPO, http_json, run_playbook, running_pod, wait_until, webui_models
from sandboxlib import snapshot as shared_snapshot
# The engines of these tests run on up to 4 GPUs: TinyLlama's name (32 attention heads, 4 KV heads), as
# SmolLM2's 9 heads divide by 1 or 3 only and vLLM's own checks (tests/cluster/pod_runner.py) refuse 2 or 4.
ENGINE_MODEL = MODEL_TP

OWN = "wcls030-default"
CRASH = "wcls028-default"
PLAYBOOKS = REPO / "playbooks"
SECRET_VALUE = "webui-key-do-not-print-5f2c9a"
API_KEY_VALUE = "engine-key-do-not-print-8d1e7b"

LABELS = {
    "app.kubernetes.io/name": "vllm",
    "app.kubernetes.io/instance": "vllm",
    "app.kubernetes.io/component": "engine",
    "app.kubernetes.io/part-of": "haw-icc-llm",
    "app.kubernetes.io/managed-by": "haw_icc.llm",
}
WEBUI_LABELS = dict(LABELS, **{"app.kubernetes.io/name": "webui", "app.kubernetes.io/instance": "webui",
                               "app.kubernetes.io/component": "webui"})


def engine_objects(ns, gpus=4, tp=None, container="vllm", model=ENGINE_MODEL, webui=False):
    """A labelled engine like the roles deploy: Deployment (GPUs, V100 toleration, shm), Service,
    PVC, the WebUI secret key and an engine API key Secret; optionally a WebUI Deployment+Service."""
    selector = {k: LABELS[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    tp = gpus if tp is None else tp
    objs = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": "vllm-cache", "namespace": ns, "labels": LABELS},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "webui-secret-key", "namespace": ns, "labels": WEBUI_LABELS},
         "stringData": {"secret-key": SECRET_VALUE}},
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "vllm-api-key", "namespace": ns, "labels": LABELS},
         "stringData": {"api-key": API_KEY_VALUE}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "vllm-config", "namespace": ns, "labels": LABELS},
         "data": {"note": "labelled ConfigMap"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "vllm", "namespace": ns, "labels": LABELS},
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": LABELS}, "spec": {
                      # As the roles render it: no Service link variables (a Service "vllm" breaks vLLM).
                      "enableServiceLinks": False,
                      "tolerations": [{"key": "gpu-tesla-v100", "operator": "Exists", "effect": "NoSchedule"}],
                      "containers": [{
                          "name": container, "image": "vllm/vllm-openai:v0.8.5",
                          "args": ["--model", model, "--host", "0.0.0.0", "--port", "8000",
                                   "--tensor-parallel-size", str(tp)],
                          "ports": [{"name": "http", "containerPort": 8000}],
                          "resources": {"requests": {"nvidia.com/gpu": gpus, "cpu": "100m", "memory": "128Mi"},
                                        "limits": {"nvidia.com/gpu": gpus, "cpu": "1", "memory": "1Gi"}},
                          "volumeMounts": [{"name": "cache", "mountPath": "/root/.cache/huggingface"},
                                           {"name": "dshm", "mountPath": "/dev/shm"}]}],
                      "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "vllm-cache"}},
                                  {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "%dGi" % (8 * gpus)}}]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "vllm", "namespace": ns, "labels": LABELS},
         "spec": {"selector": selector, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}},
    ]
    if webui:
        wsel = {k: WEBUI_LABELS[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        objs += [
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "webui", "namespace": ns, "labels": WEBUI_LABELS},
             "spec": {"replicas": 1, "selector": {"matchLabels": wsel},
                      "template": {"metadata": {"labels": WEBUI_LABELS}, "spec": {"containers": [{
                          "name": "webui", "image": "ghcr.io/open-webui/open-webui:v0.6.18",
                          "ports": [{"name": "http", "containerPort": 8080}],
                          # The real Open WebUI runs this pod: without a base URL it would ask api.openai.com.
                          "env": [{"name": "OPENAI_API_BASE_URL", "value": "http://vllm:8000/v1"},
                                  {"name": "ENABLE_OLLAMA_API", "value": "False"}],
                          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                        "limits": {"cpu": "1", "memory": "1Gi"}}}]}}}},
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "webui", "namespace": ns, "labels": WEBUI_LABELS},
             "spec": {"selector": wsel, "ports": [{"name": "http", "port": 3000, "targetPort": "http"}]}},
        ]
    return objs


def apply(sandbox, ns, objs, kubeconfig=None):
    proc = subprocess.run(
        [sandbox.kubectl_path, "--kubeconfig", kubeconfig or sandbox.kubeconfig(ns), "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}),
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def deploy(sandbox, ns, **kw):
    """Create the engine objects with the student's kubeconfig and wait until its pods are Ready."""
    kc = sandbox.kubeconfig(ns)
    apply(sandbox, ns, engine_objects(ns, **kw), kubeconfig=kc)
    for name in ["vllm"] + (["webui"] if kw.get("webui") else []):
        sandbox.kubectl("-n", ns, "rollout", "status", "deployment/%s" % name, "--timeout=90s",
                        kubeconfig=kc, timeout=120)
    return running_pod(sandbox, ns)


def remove_all(sandbox, ns):
    sandbox.kubectl("-n", ns, "delete", "deployment,service,configmap,secret,pvc,pod,job",
                    "-l", "app.kubernetes.io/part-of=haw-icc-llm", "--wait=true", "--timeout=90s",
                    timeout=120, check=False)


def snapshot(sandbox, ns):
    """Kind/name -> resourceVersion of the labelled objects of the namespace (bare pods and
    ReplicaSets are left out: the roles' rollouts replace them)."""
    return shared_snapshot(sandbox, ns, kinds="deployment,service,configmap,secret,pvc,job,ingress",
                           selector="app.kubernetes.io/part-of=haw-icc-llm")


def names(sandbox, ns):
    return set(snapshot(sandbox, ns))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def host_run(playbook, host, check=False, **extra):
    return run_playbook(PLAYBOOKS / playbook, limit=host, extra_vars=extra or None, check=check)


@pytest.fixture(scope="module")
def own_engine(sandbox):
    remove_all(sandbox, OWN)
    pod = deploy(sandbox, OWN, gpus=4, webui=True)
    yield pod
    remove_all(sandbox, OWN)


# --- status ------------------------------------------------------------------------------------

def test_status_lists_engine_service_and_pvc(sandbox, own_engine):
    run = host_run("status.yml", OWN)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed() == 0
    report = run.result("Read the namespace")["report"]
    assert report["namespace"] == OWN
    engine = [w for w in report["workloads"] if w["name"] == "vllm"]
    assert engine, report
    engine = engine[0]
    assert engine["engine"] == "vllm" and engine["model"] == ENGINE_MODEL
    assert engine["image"] == "vllm/vllm-openai:v0.8.5"
    assert engine["gpus"] == 4 and engine["ready"] == "1/1" and engine["restarts"] == 0
    assert engine["nodes"] == own_engine["spec"]["nodeName"]
    services = {s["name"]: s for s in report["services"]}
    assert services["vllm"]["ports"] == "8000"
    assert own_engine["status"]["podIP"] in services["vllm"]["endpoints"]
    assert [p["name"] for p in report["pvcs"]] == ["vllm-cache"] and report["pvcs"][0]["status"] == "Bound"
    table = run.result("Show the table")["msg"]
    assert isinstance(table, list) and not any("\n" in line for line in table)  # lines, as every callback shows them
    table = "\n".join(table)
    assert "Namespace %s" % OWN in table and ENGINE_MODEL in table and "vllm-cache" in table


# --- test_gpu ----------------------------------------------------------------------------------

def test_gpu_sees_the_standin_gpus_and_the_model_answers(sandbox, own_engine):
    run = host_run("test_gpu.yml", OWN)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert run.changed() == 0
    checks = {c["name"]: c for c in run.result("Judge")["ansible_facts"]["test_gpu_checks"]}
    assert all(c["ok"] for c in checks.values()), checks
    assert checks["GPUs seen = GPUs requested"]["detail"] == "pod sees 4, requests 4, limit 4"
    assert "= 4, GPUs requested 4" in checks["Tensor parallel = GPUs"]["detail"]
    assert "model %s answered" % ENGINE_MODEL in checks["API answers"]["detail"]
    facts = run.result("Parse the output")["ansible_facts"]["test_gpu_output"]
    assert [g["name"] for g in facts["gpus"]] == ["Tesla V100-PCIE-16GB"] * 4
    assert facts["gpus"][-1]["power.draw"] == "[N/A]"
    assert len(facts["list"]) == 4 and facts["list"][0].startswith("GPU 0: Tesla V100-PCIE-16GB (UUID: GPU-")
    assert any("NVIDIA-SMI" in line for line in facts["table"])
    assert int(facts["shm_mib"]) > 0
    health = run.result("Ask the API a question through the engine Service, timed")
    assert health["model"] == ENGINE_MODEL and health["answer"].strip()


def test_gpu_reports_gpus_that_do_not_match_the_request(sandbox):
    """1 GPU requested and tensor parallel 2, but the pod sees 4: both mismatches are named."""
    remove_all(sandbox, CRASH)
    try:
        deploy(sandbox, CRASH, gpus=1, tp=2)
        run = host_run("test_gpu.yml", CRASH)
        assert run.rc != 0
        msg = " ".join(run.failure_messages())
        assert "GPUs seen = GPUs requested: pod sees 4, requests 1, limit 1" in msg
        assert "Tensor parallel = GPUs: tensor-parallel-size / num-shard = 2, GPUs requested 1" in msg
        assert "API answers" not in msg and "Engine log" not in msg
    finally:
        remove_all(sandbox, CRASH)


# --- logs --------------------------------------------------------------------------------------

def test_logs_analysis_finds_oom_cuda_nccl_and_probe_failures(sandbox, tmp_path):
    """The engine container is named engine-crash-fixture, whose log in the sandbox is the recorded-
    style vLLM crash log (tests/cluster/fixtures/vllm-crash.log). What a kubelet would report after an
    OOM kill and failing probes is written with the admin kubeconfig (kwok runs no containers)."""
    remove_all(sandbox, CRASH)
    try:
        pod = deploy(sandbox, CRASH, gpus=1, container="engine-crash-fixture")
        name = pod["metadata"]["name"]
        status = {"name": "engine-crash-fixture", "image": "vllm/vllm-openai:v0.8.5", "imageID": "",
                  "ready": True, "started": True, "restartCount": 2,
                  "state": {"running": {"startedAt": "2026-11-29T03:10:05Z"}},
                  "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                               "startedAt": "2026-11-29T03:00:00Z",
                                               "finishedAt": "2026-11-29T03:10:00Z"}}}
        sandbox.kubectl("-n", CRASH, "patch", "pod", name, "--subresource=status", "--type=strategic",
                        "-p", json.dumps({"status": {"containerStatuses": [status]}}))
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": "%s.probe" % name, "namespace": CRASH},
                 "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": CRASH},
                 "reason": "Unhealthy", "type": "Warning", "count": 3,
                 "message": "Startup probe failed: Get \"http://10.244.0.9:8000/health\": connection refused",
                 "source": {"component": "kubelet", "host": pod["spec"]["nodeName"]},
                 "firstTimestamp": "2026-11-29T03:05:00Z", "lastTimestamp": "2026-11-29T03:09:00Z"}
        proc = subprocess.run([sandbox.kubectl_path, "--kubeconfig", sandbox.admin_kubeconfig, "create", "-f", "-"],
                              input=json.dumps(event), capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr

        run = host_run("logs.yml", CRASH, component="engine", logs_previous=True, logs_lines=100,
                       logs_save_dir=str(tmp_path))
        assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
        report = run.result("Read and analyse the logs")["report"]
        assert len(report) == 1
        a = report[0]
        assert a["pod"] == name and a["container"] == "engine-crash-fixture" and a["component"] == "engine"
        assert a["restarts"] == 2 and a["oom_killed"] is True
        assert a["last_termination"] == {"reason": "OOMKilled", "exit_code": 137,
                                         "finished": "2026-11-29T03:10:00Z"}
        assert a["lines"] == 18
        assert any("torch.OutOfMemoryError: CUDA out of memory" in line for line in a["cuda_errors"])
        assert any("illegal memory access" in line for line in a["cuda_errors"])
        assert any(line.startswith("RuntimeError: NCCL error in:") for line in a["nccl_errors"])
        assert any("exit code: -9" in line for line in a["oom_lines"])
        assert a["probe_failures"] == [event["message"]]
        assert any(e.startswith("Warning | Unhealthy | 3 | Startup probe failed") for e in a["events"])
        text = "\n".join(run.result("Show the logs and the analysis")["msg"])
        assert "OOMKilled" in text and "CUDA error line(s)" in text and "NCCL error/warning line(s)" in text
        saved = tmp_path / CRASH / ("%s_engine-crash-fixture.previous.log" % name)
        assert saved.exists() and stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert "CUDA out of memory" in saved.read_text()
    finally:
        remove_all(sandbox, CRASH)


def test_logs_of_engine_and_webui(sandbox, own_engine):
    run = host_run("logs.yml", OWN, logs_lines=50)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert run.changed() == 0
    report = {a["component"]: a for a in run.result("Read and analyse the logs")["report"]}
    assert set(report) == {"engine", "webui"}
    assert report["engine"]["log_read"] and report["engine"]["lines"] > 0
    assert report["engine"]["restarts"] == 0 and not report["engine"]["oom_killed"]
    assert report["engine"]["cuda_errors"] == [] and report["engine"]["nccl_errors"] == []
    assert report["webui"]["log_read"]


def test_read_only_playbooks_run_in_check_mode_and_change_nothing(sandbox, own_engine):
    before = snapshot(sandbox, OWN)
    pod_version = own_engine["metadata"]["name"]
    for playbook in ("status.yml", "test_gpu.yml"):
        run = host_run(playbook, OWN, check=True)
        assert run.rc == 0, (playbook, run.failure_messages() or run.stdout[-3000:])
        assert run.changed() == 0, playbook
    checks = {c["name"]: c["ok"] for c in run.result("Judge")["ansible_facts"]["test_gpu_checks"]}
    assert all(checks.values()), checks
    assert snapshot(sandbox, OWN) == before
    assert running_pod(sandbox, OWN)["metadata"]["name"] == pod_version


# --- access ------------------------------------------------------------------------------------

def test_access_opens_and_closes_the_ports(sandbox, own_engine, tmp_path):
    api_port, webui_port = free_port(), free_port()
    args = dict(icc_kubectl=sandbox.kubectl_path, access_state_dir=str(tmp_path),
                access_api_port=api_port, access_webui_port=webui_port)
    state_file = tmp_path / ("%s.json" % OWN)

    check = host_run("access.yml", OWN, check=True, **args)
    assert check.rc == 0, check.failure_messages() or check.stdout[-3000:]
    assert not state_file.exists() and not port_open(api_port)

    run = host_run("access.yml", OWN, **args)
    try:
        assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        state = json.loads(state_file.read_text())
        forwards = {f["name"]: f for f in state["forwards"]}
        assert forwards["api"]["local_port"] == api_port and forwards["webui"]["local_port"] == webui_port
        assert forwards["api"]["service"] == "vllm" and forwards["webui"]["service"] == "webui"
        models = http_json("http://127.0.0.1:%d/v1/models" % api_port)
        assert ENGINE_MODEL in [m["id"] for m in models["data"]]
        assert forwards["api"]["url"] == "http://127.0.0.1:%d/v1" % api_port
        # The real Open WebUI behind the forward lists the engine's model (after a login, as it wants).
        assert ENGINE_MODEL in webui_models("http://127.0.0.1:%d" % webui_port)
        urls = "\n".join(run.result("Show the URLs")["msg"])
        assert "http://127.0.0.1:%d/v1" % api_port in urls and "http://127.0.0.1:%d/" % webui_port in urls
        pids = [f["pid"] for f in forwards.values()]
        assert all(pid_alive(p) for p in pids)

        again = host_run("access.yml", OWN, **args)
        assert again.rc == 0 and again.changed() == 0, again.stdout[-3000:]
        assert json.loads(state_file.read_text())["forwards"] == state["forwards"]
    finally:
        stop = host_run("access.yml", OWN, state="absent", **args)
    assert stop.rc == 0, stop.failure_messages()
    assert stop.changed() > 0
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="port-forwards to exit")
    assert not port_open(api_port) and not port_open(webui_port)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        http_json("http://127.0.0.1:%d/v1/models" % api_port, timeout=3)
    assert not state_file.exists()
    assert list(tmp_path.iterdir()) == []
    idle = host_run("access.yml", OWN, state="absent", **args)
    assert idle.rc == 0 and idle.changed() == 0


def test_access_takes_a_free_port_when_its_port_is_in_use(sandbox, own_engine, tmp_path):
    args = dict(icc_kubectl=sandbox.kubectl_path, access_state_dir=str(tmp_path), access_webui=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run = host_run("access.yml", OWN, access_api_port=port, **args)
        assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
        forwards = run.result("Open or close the port-forwards", OWN)["forwards"]
        chosen = forwards[0]["local_port"]
        assert chosen != port and any("local port %d (access_api_port) is in use" % port in w
                                      for w in run.result("Open or close the port-forwards", OWN)["warnings"])
        assert ENGINE_MODEL in json.dumps(http_json("http://127.0.0.1:%d/v1/models" % chosen, timeout=10))
        assert any("127.0.0.1:%d" % chosen in line for line in run.result("Show the URLs", OWN)["msg"])
    stop = host_run("access.yml", OWN, state="absent", **args)
    assert stop.rc == 0


# --- cleanup -----------------------------------------------------------------------------------

def test_cleanup_check_mode_and_refusal_change_nothing(sandbox, own_engine):
    before = snapshot(sandbox, OWN)
    check = host_run("cleanup.yml", OWN, check=True)
    assert check.rc == 0, check.failure_messages() or check.stdout[-3000:]
    plan = check.result("Find the objects of the collection")
    gone = {"%s/%s" % (o["kind"], o["name"]) for o in plan["remove"]}
    kept = {"%s/%s" % (o["kind"], o["name"]) for o in plan["kept"]}
    assert {"Deployment/vllm", "Deployment/webui", "Service/vllm", "Service/webui",
            "ConfigMap/vllm-config", "Secret/vllm-api-key"} == gone
    assert kept == {"Secret/webui-secret-key", "PersistentVolumeClaim/vllm-cache"}
    assert snapshot(sandbox, OWN) == before

    # Not confirmed: stdin is not a terminal, so the question gets no answer.
    refused = host_run("cleanup.yml", OWN)
    assert refused.rc != 0
    assert any("Not confirmed" in m and OWN in m for m in refused.failure_messages())
    assert snapshot(sandbox, OWN) == before
    for out in (check.stdout, refused.stdout):
        assert SECRET_VALUE not in out and API_KEY_VALUE not in out


def test_cleanup_keeps_data_then_purges_and_is_idempotent(sandbox):
    remove_all(sandbox, OWN)
    deploy(sandbox, OWN, gpus=1, webui=True)
    kept = {"Secret/webui-secret-key", "PersistentVolumeClaim/vllm-cache"}

    run = host_run("cleanup.yml", OWN, confirm=True)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    assert run.changed() > 0
    assert names(sandbox, OWN) == kept
    assert sandbox.kubectl_json("-n", OWN, "get", "pods", "-l", "app.kubernetes.io/part-of=haw-icc-llm")["items"] == []
    assert SECRET_VALUE not in run.stdout and API_KEY_VALUE not in run.stdout

    again = host_run("cleanup.yml", OWN, confirm=True)
    assert again.rc == 0 and again.changed() == 0, again.stdout[-3000:]
    assert names(sandbox, OWN) == kept

    purge = host_run("cleanup.yml", OWN, confirm=True, purge=True)
    assert purge.rc == 0, purge.failure_messages()
    assert names(sandbox, OWN) == set()
    last = host_run("cleanup.yml", OWN, confirm=True, purge=True)
    assert last.rc == 0 and last.changed() == 0


def run_interactive(playbook, host, answer, timeout=240, **extra):
    """Run a playbook on a pseudo-terminal (as a user would) and type ``answer`` at the prompt."""
    import fcntl
    import pty
    import select
    import termios

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOKS / playbook),
           "-i", str(REPO / "inventories" / "sandbox"), "-l", host]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(REPO),
                            preexec_fn=controlling_tty)
    os.close(slave)
    out, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready = select.select([master], [], [], 1)[0]
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and b"Type yes to continue" in out:
                    time.sleep(1)  # the prompt flushes input typed before it reads
                    os.write(master, answer.encode() + b"\r")
                    answered = True
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.returncode, out.decode(errors="replace"), answered


def test_cleanup_asks_and_obeys_the_answer(sandbox):
    remove_all(sandbox, OWN)
    deploy(sandbox, OWN, gpus=1)
    before = snapshot(sandbox, OWN)
    rc, out, answered = run_interactive("cleanup.yml", OWN, "no")
    assert answered, out[-2000:]
    assert rc != 0 and "Not confirmed (answer no)" in out
    assert "%s: Deployment/vllm, Service/vllm, ConfigMap/vllm-config, Secret/vllm-api-key" % OWN in out
    assert snapshot(sandbox, OWN) == before

    rc, out, answered = run_interactive("cleanup.yml", OWN, "yes")
    assert answered and rc == 0, out[-3000:]
    assert names(sandbox, OWN) == {"Secret/webui-secret-key", "PersistentVolumeClaim/vllm-cache"}
    assert SECRET_VALUE not in out and API_KEY_VALUE not in out
    remove_all(sandbox, OWN)
