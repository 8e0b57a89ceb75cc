"""Rules that keep a pod from dying at start-up on a real node (the kubelet-environment issue):
engine flags checked against the engines' own flag tables, the host memory vLLM pins, TGI's V100
attention settings, vLLM's FP8 minimum, the Secrets a reconfigure keeps."""

from __future__ import annotations

import json
import pathlib

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _live, _memory, _model_facts
from ansible_collections.haw_icc.llm.plugins.module_utils._flags_tgi import TGI_FLAGS
from ansible_collections.haw_icc.llm.plugins.module_utils._flags_vllm import VLLM_FLAGS, VLLM_FLAGS_VERSION

from test_engine import tgi_cfg, vllm_cfg  # pylint: disable=import-error


def refusals(report, variable):
    return [str(e) for e in report.errors if e.variable == variable]


# --- engine flags -------------------------------------------------------------------------------------

def test_the_vllm_flag_table_is_vllm_0_8_5s():
    assert VLLM_FLAGS_VERSION == "0.8.5"
    assert VLLM_FLAGS["--max-model-len"] == (1, None) and VLLM_FLAGS["--enforce-eager"][0] == 0
    assert "--max-batch-size" not in VLLM_FLAGS  # a TGI flag the original scripts passed to vLLM


@pytest.mark.parametrize("extra", [
    ["--seed", "1"], ["--seed=1"], ["--enable-prefix-caching"], ["--max_num_batched_tokens", "4096"],
    ["--kv-cache-dtype", "auto"], ["--seed", "-1"], ["--allowed-origins", '["*"]'], [],
    ["--lora-modules", "a=/x", "b=/y", "--seed", "1"], ["--hf-token"], ["--hf-token", "hf_x"],
])
def test_vllm_extra_args_its_parser_accepts_pass(extra):
    assert refusals(_engine.check_vllm(vllm_cfg(extra_args=extra)), "vllm_extra_args") == []


@pytest.mark.parametrize("extra,message", [
    (["--max-batch-size", "32"], "vllm_extra_args='--max-batch-size': not a flag of vLLM 0.8.5: its own parser "
                                 "would stop the pod (unrecognized arguments). Use a flag of vLLM 0.8.5"),
    (["--kv-cache-dtype", "fp9"], "vllm_extra_args='--kv-cache-dtype fp9': not a value vLLM 0.8.5 accepts for "
                                  "--kv-cache-dtype. Use one of auto, fp8, fp8_e4m3, fp8_e5m2."),
    (["--enable-prefix-caching=1"], "--enable-prefix-caching is a switch of vLLM 0.8.5 and takes no value"),
    (["--seed"], "vllm_extra_args='--seed': needs a value in vLLM 0.8.5"),
    (["--seed", "--disable-log-requests"], "vllm_extra_args='--seed': needs a value"),
    (["32"], "vllm_extra_args='32': is a value without a flag before it"),
    (["--tensor_parallel_size", "2"], "--tensor_parallel_size is set by the role"),
])
def test_vllm_extra_args_its_parser_would_refuse_are_refused(extra, message):
    found = refusals(_engine.check_vllm(vllm_cfg(extra_args=extra)), "vllm_extra_args")
    assert len(found) == 1 and message in found[0], found


def test_a_flag_value_with_control_characters_is_refused_too():
    """A newline in the value of a known flag must not pass as that flag's value."""
    found = refusals(_engine.check_vllm(vllm_cfg(extra_args=["--seed", "1\n- --tensor-parallel-size=4"])),
                     "vllm_extra_args")
    assert len(found) == 1 and "contains control characters" in found[0], found


def test_tgi_extra_args_are_checked_against_the_launchers_flags():
    assert refusals(_engine.check_tgi(tgi_cfg(extra_args=["--max-batch-size", "32"])), "tgi_extra_args") == []
    [msg] = refusals(_engine.check_tgi(tgi_cfg(extra_args=["--max-model-len", "4096"])), "tgi_extra_args")
    assert "not a flag of TGI 2.4.1's launcher" in msg
    [msg] = refusals(_engine.check_tgi(tgi_cfg(extra_args=["--rope-scaling", "yarn"])), "tgi_extra_args")
    assert "one of dynamic, linear" in msg
    assert TGI_FLAGS["--trust-remote-code"] == (0, None)


# --- host memory: what vLLM pins for swap -----------------------------------------------------------

@pytest.mark.parametrize("gpus,swap,limit", [(1, 4, "16Gi"), (2, 4, "20Gi"), (4, 4, "28Gi"), (4, 0, "12Gi")])
def test_the_default_memory_limit_holds_the_swap_every_worker_pins(gpus, swap, limit):
    cfg = vllm_cfg(gpu_count=gpus, swap_space=swap, memory="")
    assert _engine.vllm_memory_limit(cfg) == limit
    assert refusals(_engine.check_vllm(cfg), "vllm_memory") == []


def test_a_memory_limit_below_the_pinned_swap_is_refused_naming_the_variable():
    [msg] = refusals(_engine.check_vllm(vllm_cfg(gpu_count=4, swap_space=4, memory="16Gi")), "vllm_memory")
    assert msg.startswith("vllm_memory='16Gi': vLLM pins 16 GiB of host memory for swap (vllm_swap_space 4 GiB x 4 GPUs)")
    assert "at least '20Gi', '' (the default: 28Gi for these settings), or a smaller vllm_swap_space" in msg
    assert _engine.vllm_memory_limit(vllm_cfg(memory="20Gi")) == "20Gi"


# --- TGI on a V100, FP8 --------------------------------------------------------------------------------

def test_tgi_pods_stay_off_flashinfer_and_prefix_caching():
    assert _engine.tgi_env() == [{"name": "ATTENTION", "value": "paged"}, {"name": "PREFIX_CACHING", "value": "0"}]


def test_vllm_fp8_needs_compute_capability_8_0_as_vllm_0_8_5s_fp8_py_says():
    [msg] = refusals(_engine.check_vllm(vllm_cfg(quantization="fp8")), "vllm_quantization")
    assert "vLLM needs compute capability 8.0 for fp8" in msg


# --- the Secrets a reconfigure keeps ----------------------------------------------------------------------

def test_live_settings_name_the_secrets_the_engine_env_refers_to():
    env = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "vllm-hf-token", "key": "token"}}},
           {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "my-key", "key": "api-key"}}}]
    dep = {"metadata": {"name": "vllm", "labels": {"app.kubernetes.io/name": "vllm"}},
           "spec": {"template": {"spec": {"containers": [{"args": ["--model", "m"], "env": env}]}}}}
    live = _live.live_settings(dep)
    assert live["hf_token_secret"] == "vllm-hf-token" and live["api_key_secret"] == "my-key"
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = []
    live = _live.live_settings(dep)
    assert live["hf_token_secret"] == "" and live["api_key_secret"] == ""


# --- tensor parallel against the attention heads ---------------------------------------------------------

SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"  # 9 attention heads, 3 KV heads


@pytest.mark.parametrize("count", [2, 4])
def test_a_gpu_count_that_does_not_divide_the_heads_is_refused_naming_the_variable(count):
    [msg] = refusals(_engine.check_vllm(vllm_cfg(model=SMOLLM, gpu_count=count)), "vllm_gpu_count")
    assert msg.startswith("vllm_gpu_count=%d: %s has 9 attention heads and 3 KV heads, and vLLM cannot split "
                          "them over %d GPUs" % (count, SMOLLM, count))
    assert msg.endswith("Use 1 or 3 (the GPU counts this model allows on one node).")


@pytest.mark.parametrize("model,count", [(SMOLLM, 1), (SMOLLM, 3), ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 2),
                                         ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 4),
                                         ("mistralai/Mistral-7B-Instruct-v0.3", 4),
                                         ("Qwen/Qwen2.5-7B-Instruct", 4)])
def test_gpu_counts_that_divide_the_heads_pass(model, count):
    report = _engine.check_vllm(vllm_cfg(model=model, gpu_count=count))
    assert refusals(report, "vllm_gpu_count") == []
    assert not [w for w in report.warnings if "attention heads" in w]


def test_vllm_replicates_kv_heads_that_are_fewer_than_the_gpus_and_tgi_does_not():
    # Qwen2.5-7B: 28 heads, 4 KV heads; SmolLM2-360M: 15 heads, 5 KV heads.
    assert _engine.tensor_parallel_sizes("vllm", 28, 4, 4) == [1, 2, 4]
    assert _engine.tensor_parallel_sizes("vllm", 32, 2, 4) == [1, 2, 4]
    assert _engine.tensor_parallel_sizes("vllm", 32, 1, 4) == [1, 2, 4]
    assert _engine.tensor_parallel_sizes("tgi", 32, 2, 4) == [1, 2]
    assert _engine.tensor_parallel_sizes("vllm", 15, 5, 4) == [1]  # 3 divides the 15 heads, not the 5 KV heads


def test_an_unknown_model_on_several_gpus_gets_a_warning_not_a_refusal():
    report = _engine.check_vllm(vllm_cfg(model="someone/custom-model", gpu_count=2))
    assert refusals(report, "vllm_gpu_count") == []
    [warning] = [w for w in report.warnings if "attention heads" in w]
    assert warning.startswith("vllm_gpu_count=2: the attention heads of someone/custom-model are not known")
    one = _engine.check_vllm(vllm_cfg(model="someone/custom-model", gpu_count=1))
    assert not [w for w in one.warnings if "attention heads" in w]


def test_tgi_forced_to_shard_checks_the_heads_too():
    [msg] = refusals(_engine.check_tgi(tgi_cfg(model=SMOLLM, gpu_count=2, allow_sharding_on_v100=True)),
                     "tgi_gpu_count")
    assert "TGI cannot split them over 2 GPUs (the attention heads and the KV heads must both divide by it)" in msg
    assert msg.endswith("Use 1 or 3 (the GPU counts this model allows on one node).")


def test_the_model_table_agrees_with_the_config_json_of_every_model_in_the_sandbox_store():
    """tests/cluster/models holds the public config.json of the sandbox's models (what vLLM's start-up
    check reads and the Hub double serves): the heads, KV heads and layers the preflight uses are the
    models' own, read from the Hub (_model_facts) and, where the fallback table knows the model, from it."""
    store = pathlib.Path(__file__).resolve().parents[1] / "cluster" / "models"
    configs = sorted(store.glob("*/*/config.json"))
    assert len(configs) >= 3
    in_table = 0
    for path in configs:
        model = "%s/%s" % (path.parent.parent.name, path.parent.name)
        config = json.loads(path.read_text())
        own = (config["num_attention_heads"], config["num_key_value_heads"], config["num_hidden_layers"],
               config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
        hub = _model_facts.facts_of(model, config, {"F16": 1})
        assert (hub["heads"], hub["kv_heads"], hub["layers"], hub["head_dim"]) == own, model
        facts = _memory.model_size_hint(model)
        if facts and facts["source"] == "table":
            in_table += 1
            assert (facts["heads"], facts["kv_heads"], facts["layers"], facts["head_dim"]) == own, model
    assert in_table >= 3
