"""The preflight reads model facts from the Hugging Face Hub (plugins/plugin_utils/_hub.py, with the real
huggingface_hub) before anything is created: in the sandbox from its Hub double (tests/cluster/hub_double.py,
icc_hf_endpoint of inventories/sandbox). Each refusal names the variable as the user set it and leaves
the namespace untouched; with the Hub unreachable, a run warns once and goes on with the table estimate;
a class run reads each model once."""

from __future__ import annotations

import pytest

from sandboxlib import MODEL, free_port, hub_requests, run_playbook

NS = "wcls015-default"
OTHER = "wcls001-default"  # check mode only: nothing is created there
KINDS = "deployments,replicasets,pods,services,persistentvolumeclaims,secrets,configmaps"

REFUSALS = [
    # vLLM detects AWQ from the checkpoint's quantization_config even with quantization '', and AWQ needs sm75.
    ("awq-checkpoint-empty-quantization", {"icc_model": "Qwen/Qwen2.5-7B-Instruct-AWQ", "icc_quantization": ""},
     ["icc_model=Qwen/Qwen2.5-7B-Instruct-AWQ: the model is a AWQ checkpoint", "compute capability 7.5"]),
    # SmolLM2-135M: 9 attention heads (its config.json on the Hub).
    ("tp2-for-9-heads", {"icc_gpu_count": 2},
     ["icc_gpu_count -> vllm_gpu_count=2", "9 attention heads and 3 KV heads", "1 or 3"]),
    # Qwen2.5-0.5B: 14 heads and 2 KV heads; the built-in table does not know it, only the Hub does.
    ("tp4-for-14-heads-outside-the-table", {"icc_model": "Qwen/Qwen2.5-0.5B-Instruct", "icc_gpu_count": 4},
     ["icc_gpu_count -> vllm_gpu_count=4", "14 attention heads and 2 KV heads"]),
    # TinyLlama: max_position_embeddings 2048.
    ("max-model-len-above-the-limit", {"icc_model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "icc_max_total_tokens": 4096},
     ["icc_max_total_tokens=4096: TinyLlama/TinyLlama-1.1B-Chat-v1.0 was built for at most 2048 tokens",
      "Use icc_max_total_tokens 2048 or less"]),
    ("gated-without-access", {"icc_model": "meta-llama/Llama-3.2-1B-Instruct", "icc_hf_token": "hf_sandbox_no_access"},
     ["icc_hf_token does not give access to icc_model=meta-llama/Llama-3.2-1B-Instruct", "Accept its license on"]),
    ("typo-in-the-model-id", {"icc_model": "HuggingFaceTB/SmolLM2-135M-Instrcut"},
     ["icc_model=HuggingFaceTB/SmolLM2-135M-Instrcut:", "has no model of that name", "Check the spelling"]),
]


def snapshot(sandbox, ns=NS):
    items = sandbox.kubectl_json("-n", ns, "get", KINDS)["items"]
    return {"%s/%s" % (i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"] for i in items}


@pytest.mark.parametrize("extra,needles", [(e, n) for _id, e, n in REFUSALS], ids=[i for i, _e, _n in REFUSALS])
def test_the_hub_facts_refuse_before_anything_is_created(sandbox, extra, needles):
    before = snapshot(sandbox)
    run = run_playbook("playbooks/deploy.yml", limit=NS, extra_vars=extra)
    assert run.rc != 0
    msg = " ".join(run.failure_messages())
    assert msg.startswith("Preflight refused %s: " % NS), msg
    for needle in needles:
        assert needle in msg, msg
    assert run.changed(NS) == 0
    assert snapshot(sandbox) == before


def test_a_token_with_access_passes_the_gated_check(sandbox):
    run = run_playbook("playbooks/deploy.yml", limit=NS, check=True,
                       extra_vars={"icc_model": "meta-llama/Llama-3.2-1B-Instruct",
                                   "icc_hf_token": "hf_sandbox_llama_access"})
    assert run.rc == 0, run.stdout[-3000:]
    facts = run.result("Plan (settings, V100 and engine rules, memory fit, rights, GPUs; nothing is changed)", NS)
    assert facts["model_facts"]["status"] == "ok" and facts["model_facts"]["gated"] == "manual"
    assert facts["memory_fit"]["source"] == "hub" and facts["memory_fit"]["params_b"] == pytest.approx(1.2358, abs=1e-3)
    assert "hf_sandbox_llama_access" not in run.stdout


def test_a_class_run_reads_each_model_once(sandbox):
    before = hub_requests()
    run = run_playbook("playbooks/deploy.yml", limit="%s,%s" % (NS, OTHER), check=True,
                       extra_vars={"icc_model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "icc_max_total_tokens": 2048})
    assert run.rc == 0, run.stdout[-3000:]
    after = hub_requests()
    key = "model_info TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    assert after.get(key, 0) - before.get(key, 0) == 1, (before, after)
    for ns in (NS, OTHER):
        plan = run.result("Plan (settings, V100 and engine rules, memory fit, rights, GPUs; nothing is changed)", ns)
        assert plan["model_facts"]["max_position"] == 2048 and plan["memory_fit"]["source"] == "hub"


def test_with_the_hub_unreachable_a_run_warns_once_and_goes_on(sandbox):
    before = (snapshot(sandbox), snapshot(sandbox, OTHER))
    down = "http://127.0.0.1:%d" % free_port()  # nothing listens there
    run = run_playbook("playbooks/deploy.yml", limit="%s,%s" % (NS, OTHER), check=True,
                       extra_vars={"icc_hf_endpoint": down}, env={"ANSIBLE_STDOUT_CALLBACK": "default"})
    assert run.rc == 0, run.stdout[-3000:]
    text = " ".join((run.stdout + run.stderr).split())  # warnings go to stderr, wrapped
    warning = "The Hugging Face Hub at %s could not be read" % down
    assert text.count(warning) == 1, run.stdout[-4000:]
    assert "built-in table" in text and ("would deploy %s with vllm" % MODEL) in text
    assert (snapshot(sandbox), snapshot(sandbox, OTHER)) == before
