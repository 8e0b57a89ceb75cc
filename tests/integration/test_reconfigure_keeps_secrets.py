"""scale and change_model keep the Secrets the engine uses and the engine's other settings, and send
the engine's API key.

A student deploys once with ``-e vllm_api_key=... -e icc_hf_token=...`` (the role stores both in
Secrets) and later runs scale or change_model without them, as the README's examples do. Before, the
re-rendered engine lost ``VLLM_API_KEY`` and ``HF_TOKEN`` (an open API, silently) and llm_health asked
without a key (401 for the whole health timeout against an engine that checks it). Now the Secret
references carry over from the live Deployment, and llm_health reads the key from the Secret.

The other settings of the deploy (here ``-e vllm_max_num_seqs=16 -e vllm_extra_args=[--seed, 7]`` and
the V100S GPU type) were reset to the inventory's and the role's defaults by the next scale or
change_model (and the engine moved to a V100 node). Now they carry over too, from the settings the
Deployment was applied with (its haw-icc.de/settings annotation).

The engine that answers is the pod's own (tests/cluster/pod_engines.py): a real llama.cpp server that
vLLM's own parser configured from the pod, and that wants the key of the pod's ``VLLM_API_KEY``, as
vLLM does: llm_health without the key gets 401, with ``api_key_secret`` it gets answers.
"""

from __future__ import annotations

import secrets

from sandboxlib import engine_deployment, llm_health_play, pod_engine, remove_collection, run_playbook, running_pod

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
                           extra_vars={"icc_webui": False, "vllm_api_key": API_KEY, "icc_hf_token": HF_TOKEN,
                                       "vllm_max_num_seqs": 16, "vllm_extra_args": ["--seed", "7"],
                                       "icc_gpu_type": "gpu-tesla-v100s"})
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        want = {"HF_TOKEN": "vllm-hf-token", "HUGGING_FACE_HUB_TOKEN": "vllm-hf-token", "VLLM_API_KEY": "vllm-api-key"}
        assert secret_refs(sandbox) == want

        # change_model with the key given again, scale without it (the key comes from the Secret).
        changed = run_playbook("playbooks/change_model.yml", limit=NS,
                               extra_vars={"model": SECOND, "quantization": "gptq", "vllm_api_key": API_KEY})
        assert changed.rc == 0, changed.failure_messages() or changed.stdout[-4000:]
        assert secret_refs(sandbox) == want
        health = changed.result("Ask the new model a question through its Service", NS)
        assert health["model"] == SECOND

        # 3 GPUs: 9 attention heads and 3 KV heads of SmolLM2-135M divide by 3.
        scaled = run_playbook("playbooks/scale.yml", limit=NS, extra_vars={"gpu_count": 3})
        assert scaled.rc == 0, scaled.failure_messages() or scaled.stdout[-4000:]
        assert secret_refs(sandbox) == want
        assert engine_deployment(sandbox, NS)[1]["resources"]["limits"]["nvidia.com/gpu"] == "3"
        deployment, container, _shm = engine_deployment(sandbox, NS)
        args = container["args"]
        assert args[args.index("--max-num-seqs") + 1] == "16" and args[args.index("--seed") + 1] == "7", args
        tolerations = deployment["spec"]["template"]["spec"]["tolerations"]
        assert [t["key"] for t in tolerations if t["key"].startswith("gpu-")] == ["gpu-tesla-v100s"], tolerations
        stored = sandbox.kubectl_json("-n", NS, "get", "secret", "vllm-api-key")["data"]["api-key"]
        assert stored  # the role's Secret is still there and still the key

        # The pod's own engine serves the new model and wants the key.
        engine = pod_engine(running_pod(sandbox, NS))
        assert engine["names"] == [SECOND] and engine["api_key"] and engine["answered"], engine
        ask = dict(service="vllm", model=SECOND, stream=False, wait_timeout=5)
        without = run_playbook(llm_health_play(**ask), limit=NS)
        assert without.rc != 0 and "401" in " ".join(without.failure_messages()), without.failure_messages()
        wrong = run_playbook(llm_health_play(api_key_secret="no-such-secret", **ask), limit=NS)
        assert wrong.rc != 0 and "api_key_secret='no-such-secret': no Secret of that name in namespace %s" % NS \
            in " ".join(wrong.failure_messages()), wrong.failure_messages()
        good = run_playbook(llm_health_play(api_key_secret="vllm-api-key", **ask), limit=NS)
        assert good.rc == 0, good.failure_messages() or good.stdout[-3000:]
        assert good.result("Ask", NS)["answer"].strip()
        assert API_KEY not in good.stdout and API_KEY not in good.stderr
    finally:
        remove_collection(sandbox, NS)
