"""Secrets never leak: every playbook, run at -vvv with the default stdout callback (as a user would),
prints no Hugging Face token, API key, WebUI secret key or kubeconfig credential, also not base64
encoded; no Deployment, ReplicaSet or Pod spec holds one as a literal (env values come from
secretKeyRef); every file the playbooks write that holds one (the kubeconfig login.yml writes and
its backup, access.yml's state and port-forward logs, saved logs) is mode 0600, and the saved logs
and monitor outputs carry none.

The HF token and the API key are distinctive canaries made for this run; the WebUI secret key is read
from its Secret after the deploy; the kubeconfig credentials are the sandbox students' bearer tokens
(and client key data, if a kubeconfig has any)."""

from __future__ import annotations

import base64
import json
import pathlib
import secrets
import shutil
import stat

import pytest
import yaml

from sandboxlib import free_port, grant_hub_access, remove_collection, run_playbook

NS = "wcls026-default"
OTHER = "wcls027-default"  # a kubeconfig already at the destination of login.yml (its backup holds it)
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too
GATED = "meta-llama/Llama-3.2-1B-Instruct"  # gated: the preflight wants the token (check mode only)
HF_TOKEN = "hf_CANARY" + secrets.token_hex(12)
API_KEY = "sk-CANARY" + secrets.token_hex(12)
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "OPENAI_API_KEY", "OPENAI_API_KEYS",
              "WEBUI_SECRET_KEY", "API_KEY")


def b64_forms(value):
    """Base64 text that encodes ``value`` wherever it sits in a longer encoded text: one core per
    alignment (the first and last group, which depend on the neighbouring bytes, are dropped)."""
    raw = value.encode()
    forms = set()
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + raw + b"\0\0\0").decode()
        start = 4 if offset else 0
        forms.add(enc[start:4 * ((offset + len(raw)) // 3)])
    return {f for f in forms if len(f) >= 16}


def kubeconfig_credentials(path):
    creds = []
    for user in (yaml.safe_load(pathlib.Path(path).read_text()) or {}).get("users") or []:
        for key in ("token", "client-key-data", "password"):
            if (user.get("user") or {}).get(key):
                creds.append(user["user"][key])
    return creds


class Runs(object):
    """The runs of one walk through every playbook, and what they wrote."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.runs = {}
        self.secrets = {"hf token": HF_TOKEN, "api key": API_KEY}

    def add(self, label, run):
        self.runs[label] = run
        return run


def vvv(playbook, **kw):
    return run_playbook("playbooks/%s" % playbook, verbosity=3, **kw)


@pytest.fixture(scope="module")
def walk(sandbox, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    out = Runs(tmp)
    for ns in (NS, OTHER):
        for i, cred in enumerate(kubeconfig_credentials(sandbox.kubeconfig(ns))):
            out.secrets["kubeconfig %s credential %d" % (ns, i)] = cred
    user_secrets = {"icc_hf_token": HF_TOKEN, "vllm_api_key": API_KEY}
    remove_collection(sandbox, NS)

    # login.yml: a kubeconfig of another namespace is already at the destination: merged, backed up.
    src = tmp / "config.txt"
    shutil.copy(sandbox.kubeconfig(NS), src)
    dest = tmp / "kube" / "config"
    dest.parent.mkdir()
    shutil.copy(sandbox.kubeconfig(OTHER), dest)
    dest.chmod(0o600)
    out.login_dest = dest
    run = out.add("login", vvv("login.yml", extra_vars={"icc_login_src": str(src), "dest": str(dest),
                                                        "icc_user_id": "infwcls026"}))
    assert run.rc == 0, run.stdout[-3000:]

    run = out.add("deploy", vvv("deploy.yml", limit=NS, extra_vars=user_secrets))
    assert run.rc == 0, run.stdout[-4000:]
    key = sandbox.kubectl_json("-n", NS, "get", "secret", "webui-secret-key")["data"]["secret-key"]
    out.secrets["webui secret key"] = base64.b64decode(key).decode()
    # The canary token's account has accepted the gated model's license (on the sandbox's Hub double).
    grant_hub_access(GATED, HF_TOKEN)
    run = out.add("deploy gated --check", vvv("deploy.yml", limit=NS, check=True,
                                              extra_vars=dict(user_secrets, icc_model=GATED)))
    assert run.rc == 0, run.stdout[-4000:]

    run = out.add("status", vvv("status.yml", limit=NS))
    assert run.rc == 0, run.stdout[-3000:]
    out.logs_dir = tmp / "logs"
    run = out.add("logs", vvv("logs.yml", limit=NS, extra_vars={"logs_save_dir": str(out.logs_dir), "logs_lines": 50}))
    assert run.rc == 0, run.stdout[-3000:]
    # The sandbox's nvidia-smi shows 4 GPUs to a 1-GPU pod: test_gpu.yml may report that mismatch.
    out.add("test_gpu", vvv("test_gpu.yml", limit=NS, extra_vars={"test_gpu_api_key": API_KEY}))

    out.access_dir = tmp / "access"
    access = {"icc_kubectl": sandbox.kubectl_path, "access_state_dir": str(out.access_dir),
              "access_api_port": free_port(), "access_webui_port": free_port()}
    run = out.add("access present", vvv("access.yml", limit=NS, extra_vars=access))
    try:
        assert run.rc == 0, run.stdout[-3000:]
        out.access_files = {p: stat.S_IMODE(p.stat().st_mode) for p in out.access_dir.iterdir()}
    finally:
        stop = out.add("access absent", vvv("access.yml", limit=NS, extra_vars=dict(access, state="absent")))
    assert stop.rc == 0, stop.stdout[-3000:]

    out.monitor_dir = tmp / "monitor"
    run = out.add("monitor", vvv("monitor.yml", limit=NS, extra_vars={
        "gpu_monitor_count": 2, "gpu_monitor_interval": 1, "gpu_monitor_dest": str(out.monitor_dir)}))
    assert run.rc == 0, run.stdout[-3000:]

    run = out.add("scale", vvv("scale.yml", limit=NS, extra_vars=dict(user_secrets, gpu_count=3)))
    assert run.rc == 0, run.stdout[-3000:]
    run = out.add("change_model", vvv("change_model.yml", limit=NS, extra_vars=dict(user_secrets, model=SECOND)))
    assert run.rc == 0, run.stdout[-3000:]
    out.workloads = sandbox.kubectl_json("-n", NS, "get", "deployments,replicasets,pods,statefulsets,jobs")["items"]

    run = out.add("cleanup", vvv("cleanup.yml", limit=NS, extra_vars={"confirm": True, "purge": True}))
    assert run.rc == 0, run.stdout[-3000:]

    # The TGI role has its own Secret tasks: the same token through them.
    run = out.add("deploy tgi", vvv("deploy.yml", limit=NS, extra_vars={"icc_hf_token": HF_TOKEN, "icc_engine": "tgi",
                                                                        "icc_webui": False}))
    assert run.rc == 0, run.stdout[-4000:]
    out.workloads += sandbox.kubectl_json("-n", NS, "get", "deployments,replicasets,pods")["items"]
    run = out.add("cleanup tgi", vvv("cleanup.yml", limit=NS, extra_vars={"confirm": True, "purge": True}))
    assert run.rc == 0, run.stdout[-3000:]
    yield out
    remove_collection(sandbox, NS)


def leaks(text, named_secrets):
    found = []
    for name, value in named_secrets.items():
        if value in text:
            found.append(name)
        elif any(form in text for form in b64_forms(value)):
            found.append(name + " (base64)")
    return found


def test_the_walk_ran_every_playbook_at_vvv_with_the_default_callback(walk):
    assert set(walk.runs) >= {"login", "deploy", "deploy gated --check", "status", "logs", "test_gpu",
                              "access present", "access absent", "monitor", "scale", "change_model", "cleanup",
                              "deploy tgi", "cleanup tgi"}
    for label, run in walk.runs.items():
        # -vvv really was on: every run prints its task paths, and every run that asks a module its
        # connection (all but deploy, scale, change_model and monitor without a load, whose steps are all
        # controller-side action plugins: the plan, the role cores, llm_health, gpu_monitor_sample).
        assert run.data is None and "TASK [" in run.stdout and "task path:" in run.stdout, label
        assert label.startswith(("deploy", "scale", "change_model", "monitor")) or "ESTABLISH LOCAL CONNECTION" in run.stdout, label
    # The token reached the engines through their Secrets (so a leak would have had a chance).
    assert "vllm-hf-token" in walk.runs["deploy"].stdout and "tgi-hf-token" in walk.runs["deploy tgi"].stdout


@pytest.mark.parametrize("label", ["login", "deploy", "deploy gated --check", "status", "logs", "test_gpu",
                                   "access present", "access absent", "monitor", "scale", "change_model",
                                   "cleanup", "deploy tgi", "cleanup tgi"])
def test_no_secret_in_the_output(walk, label):
    run = walk.runs[label]
    assert leaks(run.stdout + run.stderr, walk.secrets) == []


def test_no_secret_is_a_literal_in_a_workload_spec(walk):
    text = json.dumps(walk.workloads)
    assert leaks(text, walk.secrets) == []
    engine_envs = 0
    for item in walk.workloads:
        spec = item["spec"]["template"]["spec"] if item["kind"] != "Pod" else item["spec"]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                if env["name"] in SECRET_ENV:
                    assert "value" not in env and "secretKeyRef" in env.get("valueFrom", {}), (item["metadata"]["name"], env)
                    engine_envs += 1
    assert engine_envs >= 5  # HF_TOKEN, HUGGING_FACE_HUB_TOKEN (vLLM, TGI), VLLM_API_KEY at least


def test_files_holding_secrets_are_0600(walk):
    dest = walk.login_dest
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    backups = [p for p in dest.parent.iterdir() if p != dest]
    assert backups, list(dest.parent.iterdir())
    for path in [dest] + backups:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # The kubeconfig holds both namespaces' credentials now; the backup the old one.
    assert all(cred in dest.read_text() for name, cred in walk.secrets.items() if name.startswith("kubeconfig"))
    assert walk.access_files and all(mode == 0o600 for mode in walk.access_files.values()), walk.access_files


def test_saved_logs_are_0600_and_carry_no_secret(walk):
    files = [p for p in walk.logs_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert leaks(path.read_text(errors="replace"), walk.secrets) == [], path


def test_monitor_outputs_carry_no_secret(walk):
    files = [p for p in walk.monitor_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert leaks(path.read_bytes().decode("latin-1"), walk.secrets) == [], path
