"""The third engine, llama.cpp (issue 12), through every workflow against the real llama-server.

Each llama.cpp pod of the sandbox runs llama.cpp's own llama-server (tests/cluster/pod_llamacpp.py,
built by hack/llama-server.sh from the llama.cpp that the pinned llama-cpp-python vendors) with the
pod's argv and kubelet environment; only the model (the sandbox's SmolLM2 GGUF for --hf-repo), host and
port are the sandbox's. So its own parser reads the role's flags, its own API-key check guards /v1 and
a flag it does not know stops the pod with its own message."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

from sandboxlib import (REPO, container_arg, engine_deployment, live_pods, namespace_snapshot, pod_engine,
                        remove_collection, run_playbook, running_pod, wait_until, webui_models)

NS = "wcls010-default"
NS_FLAG = "wcls011-default"
REPO_GGUF = "bartowski/SmolLM2-135M-Instruct-GGUF"
MODEL = REPO_GGUF + ":Q4_K_M"
KEY = "sandbox-llama-key-1"
BASE = {"icc_engine": "llamacpp", "icc_model": MODEL, "icc_max_total_tokens": 2048}


def ask(sandbox, namespace, model, key=None, service="llamacpp"):
    """(status, body) of a chat request to the engine's Service, through a port-forward."""
    proc, port = sandbox.port_forward(namespace, "svc/%s" % service, 8000, kubeconfig=sandbox.kubeconfig(namespace))
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, headers=headers, data=json.dumps(
        {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]}).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    finally:
        proc.kill()
        proc.wait()


def engine_pod(sandbox, namespace):
    pod = running_pod(sandbox, namespace)
    return pod, pod_engine(pod)


def test_deploy_scale_and_change_model_run_the_real_llama_server(sandbox, tmp_path):
    remove_collection(sandbox, NS)
    try:
        _lifecycle(sandbox, tmp_path)
    finally:
        remove_collection(sandbox, NS)


def _operations(sandbox, tmp_path):
    """test_gpu, monitor and logs on the 2-GPU llama.cpp engine (key from its Secret, metrics named llamacpp:)."""
    control = pathlib.Path(sandbox.root) / "nvidia-smi-standin.json"
    saved = control.read_text() if control.exists() else None
    control.write_text(json.dumps({"gpus": 2}))  # the 2-GPU pod sees 2 GPUs
    try:
        gpu = run_playbook("playbooks/test_gpu.yml", limit=NS)
        assert gpu.rc == 0, gpu.failure_messages() or gpu.stdout[-3000:]
        report = json.dumps(gpu.data)
        assert "split-mode layer (every GPU of the pod) = 2, GPUs requested 2" in report
        assert "[OK] API answers: model %s" % MODEL in report
        monitor = run_playbook("playbooks/monitor.yml", limit=NS, extra_vars={
            "gpu_monitor_count": 3, "gpu_monitor_interval": 1, "gpu_monitor_load": True,
            "gpu_monitor_dest": str(tmp_path / "monitor"), "gpu_monitor_formats": ["csv", "summary"]})
        assert monitor.rc == 0, monitor.failure_messages() or monitor.stdout[-3000:]
    finally:
        if saved is None:
            control.unlink()
        else:
            control.write_text(saved)
    summary = json.loads(next((tmp_path / "monitor").glob("*.summary.json")).read_text())
    assert summary["engine"]["metrics"] == "available"
    assert summary["engine"]["names"]["generation_tokens_per_s"] == "llamacpp:tokens_predicted_total"
    # every sample read llama-server's figures (the load's tokens may fall between two 1 s samples)
    assert summary["engine"]["requests_running"]["samples"] == 3
    assert summary["engine"]["generation_tokens_per_s"]["samples"] == 2
    logs = run_playbook("playbooks/logs.yml", limit=NS, extra_vars={"component": "engine", "logs_lines": 50})
    assert logs.rc == 0, logs.failure_messages() or logs.stdout[-3000:]
    assert "llama" in json.dumps(logs.data)


def _lifecycle(sandbox, tmp_path):
    # deploy: the plan, the role, and llama-server's own start with the pod's argv and env
    first = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars=dict(BASE, llamacpp_parallel=2, llamacpp_api_key=KEY))
    assert first.rc == 0, first.stdout[-4000:] + first.stderr[-2000:]
    health = first.result("Ask the model a question through its Service", NS)
    assert health["model"] == MODEL and health["answer"].strip()
    pod, engine = engine_pod(sandbox, NS)
    assert engine["engine"] == "llamacpp" and engine["answered"] and engine["api_key"]
    argv = engine["argv"]
    assert argv[argv.index("--model") + 1].endswith(".gguf") and argv[argv.index("--alias") + 1] == MODEL
    assert argv[argv.index("--parallel") + 1] == "2" and argv[argv.index("--ctx-size") + 1] == "2048"
    assert argv[argv.index("--split-mode") + 1] == "none" and "--metrics" in argv
    # the API key: llama-server's own check (LLAMA_API_KEY from the Secret) refuses a request without it
    status, body = ask(sandbox, NS, MODEL)
    assert status == 401 and "Invalid API Key" in body, (status, body)
    status, body = ask(sandbox, NS, MODEL, key=KEY)
    assert status == 200 and body["choices"][0]["message"]["content"].strip()
    # the WebUI: the real Open WebUI reaches the engine with the key of the engine's Secret
    proc, port = sandbox.port_forward(NS, "svc/webui", 3000, kubeconfig=sandbox.kubeconfig(NS))
    try:
        assert MODEL in webui_models("http://127.0.0.1:%d" % port)
    finally:
        proc.kill()
        proc.wait()
    # a second identical run changes nothing and restarts nothing
    second = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars=dict(BASE, llamacpp_parallel=2, llamacpp_api_key=KEY))
    assert second.rc == 0 and second.changed(NS) == 0, second.stdout[-3000:]
    assert running_pod(sandbox, NS)["metadata"]["uid"] == pod["metadata"]["uid"]

    # scale: the split over 2 GPUs; the slots, context and key are kept
    scaled = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 2})
    assert scaled.rc == 0, scaled.stdout[-4000:]
    _dep, container, shm = engine_deployment(sandbox, NS, "llamacpp")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2" and shm == "16Gi"
    assert container_arg(container, "--split-mode") == "layer" and container_arg(container, "--parallel") == "2"
    assert container_arg(container, "--ctx-size") == "2048"
    _pod, engine = engine_pod(sandbox, NS)
    assert engine["answered"] and engine["api_key"] and engine["argv"][engine["argv"].index("--split-mode") + 1] == "layer"
    _operations(sandbox, tmp_path)

    # change_model: another GGUF type of the repository; then one that never answers, which is rolled back
    other = REPO_GGUF + ":Q8_0"
    changed = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={"model": other})
    assert changed.rc == 0, changed.stdout[-4000:]
    _dep, container, _shm = engine_deployment(sandbox, NS, "llamacpp")
    assert container_arg(container, "--hf-repo") == other and container_arg(container, "--alias") == other
    assert container_arg(container, "--parallel") == "2" and container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    bad = run_playbook("playbooks/change_model.yml", limit=NS,
                       extra_vars={"model": "bartowski/SmolLM2-360M-Instruct-GGUF:Q8_0",
                                   "icc_health_timeout": 20})
    assert bad.rc != 0
    assert "Rolled back to %s, which answers again" % other in " ".join(bad.failure_messages())
    _dep, container, _shm = engine_deployment(sandbox, NS, "llamacpp")
    assert container_arg(container, "--hf-repo") == other
    _pod, engine = engine_pod(sandbox, NS)
    assert engine["answered"] and engine["argv"][engine["argv"].index("--alias") + 1] == other

    # status and cleanup know the engine
    status = run_playbook("playbooks/status.yml", limit=NS)
    assert status.rc == 0
    assert other in json.dumps(status.data)
    gone = run_playbook("playbooks/cleanup.yml", limit=NS, extra_vars={"confirm": True})
    assert gone.rc == 0, gone.stdout[-3000:]
    wait_until(lambda: not live_pods(sandbox, NS), timeout=120, what="the llama.cpp pod gone")
    names = [d["metadata"]["name"] for d in sandbox.kubectl_json("-n", NS, "get", "deployments")["items"]]
    assert "llamacpp" not in names
    pvcs = [p["metadata"]["name"] for p in sandbox.kubectl_json("-n", NS, "get", "pvc")["items"]]
    assert "llamacpp-cache" in pvcs  # the model cache is kept unless purge


def test_a_wrong_flag_is_refused_and_forced_past_the_preflight_fails_the_pod_with_llama_servers_message(sandbox):
    remove_collection(sandbox, NS_FLAG)
    try:
        before = namespace_snapshot(sandbox, NS_FLAG)
        refused = run_playbook("playbooks/deploy.yml", limit=NS_FLAG,
                               extra_vars=dict(BASE, icc_webui=False, llamacpp_extra_args=["--no-such-flag"]))
        assert refused.rc != 0
        assert ("llamacpp_extra_args='--no-such-flag': not a flag of llama-server b11312"
                in " ".join(refused.failure_messages())), refused.failure_messages()
        assert namespace_snapshot(sandbox, NS_FLAG) == before  # nothing was created

        good = run_playbook("playbooks/deploy.yml", limit=NS_FLAG, extra_vars=dict(BASE, icc_webui=False))
        assert good.rc == 0, good.stdout[-3000:]
        # Forced past the preflight: the student edits the Deployment with kubectl.
        sandbox.kubectl("-n", NS_FLAG, "patch", "deployment", "llamacpp", "--type=json", "-p", json.dumps(
            [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--no-such-flag"}]),
            kubeconfig=sandbox.kubeconfig(NS_FLAG))

        def crashed():
            for pod in live_pods(sandbox, NS_FLAG):
                for status in (pod.get("status") or {}).get("containerStatuses") or []:
                    message = ((status.get("lastState") or {}).get("terminated") or {}).get("message") or ""
                    if "--no-such-flag" in pod["spec"]["containers"][0]["args"] and message:
                        return status, message
            return None

        status, message = wait_until(crashed, timeout=120, what="the patched pod crash-looping")
        assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert message.splitlines()[-1] == "error: invalid argument: --no-such-flag", message
        logs = sandbox.kubectl("-n", NS_FLAG, "logs", "deployment/llamacpp", check=False,
                               kubeconfig=sandbox.kubeconfig(NS_FLAG)).stdout
        assert "error: invalid argument: --no-such-flag" in logs
    finally:
        remove_collection(sandbox, NS_FLAG)


def test_the_flag_table_is_what_the_real_llama_server_says():
    """plugins/module_utils/_flags_llamacpp.py, regenerated from the real binary's --help, is unchanged."""
    binary = subprocess.run(["bash", str(REPO / "hack" / "llama-server.sh")], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[-1]
    gen = subprocess.run([sys.executable, str(REPO / "hack" / "gen_llamacpp_flags.py"), "--check", binary],
                         capture_output=True, text=True, check=False)
    assert gen.returncode == 0, "the committed flag table differs from %s --help: run hack/gen_llamacpp_flags.py" % binary
    assert pathlib.Path(binary).is_file()
