"""Unit tests of the preflight helpers in module_utils/_memory.py and _live.py: the memory-fit estimate, the
capacity re-judged with the GPUs of the replaced pod, and the settings read from a live Deployment."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine as e
from ansible_collections.haw_icc.llm.plugins.module_utils import _live, _memory
from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import capacity_after_release


@pytest.mark.parametrize("model,expected", [
    ("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", ("table", 7.24)),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", ("table", 0.135)),
    ("TheBloke/Mixtral-8x7B-Instruct-v0.1-GPTQ", ("table", 46.7)),
    ("someone/Foo-13B-chat", ("name", 13.0)),
    ("someone/Bar-350m", ("name", 0.35)),
    ("someone/Moe-4x2B", ("name", 6.8)),
])
def test_size_from_table_or_name(model, expected):
    facts = _memory.model_size_hint(model)
    assert (facts["source"], facts["params_b"]) == expected


def test_no_size_hint():
    assert _memory.model_size_hint("someone/mystery-model") is None
    assert _memory.model_size_hint("someone/v2-b16") is None


@pytest.mark.parametrize("model,quant,dtype,bits", [
    ("a/Foo-7B", "", "", 16),
    ("a/Foo-7B", "", "float32", 32),
    ("a/Foo-7B", "gptq", "", 4),
    ("a/Foo-7B-GPTQ", "", "", 4),
    ("a/Foo-7B-8bit-GPTQ", "gptq", "", 8),
    ("a/Foo-7B-AWQ", "", "", 4),
    ("a/Foo-7B", "eetq", "", 8),
])
def test_weight_bits(model, quant, dtype, bits):
    assert _memory.weight_bits(model, quant, dtype) == bits


def test_seed_model_fits_one_v100():
    fit = _memory.memory_fit("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", "gpu-tesla-v100", 1, "gptq", "", 4096)
    assert fit["verdict"] == "fits"
    # 7.24e9 x 4 bit x 1.1 = 3.7 GiB; KV 2 x 32 x 8 x 128 x 2 B x 4096 = 0.5 GiB; + 1.5 overhead
    assert fit["weights_gib"] == pytest.approx(3.71, abs=0.02)
    assert fit["kv_gib"] == pytest.approx(0.5, abs=0.01)
    assert fit["need_gib"] == pytest.approx(5.71, abs=0.02)
    assert fit["budget_gib"] == pytest.approx(14.4, abs=0.01)
    assert "4096-token sequence 0.50 GiB" in fit["message"]


def test_fp16_13b_on_one_v100_is_refused_with_fixes():
    fit = _memory.memory_fit("meta-llama/Llama-2-13b-chat-hf", "gpu-tesla-v100", 1, "", "", 4096)
    assert fit["verdict"] == "refuse"
    assert "weights do not fit" in fit["message"]
    for fix in ("icc_gpu_count", "icc_quantization=gptq", "gpu-tesla-v100s"):
        assert fix in fit["message"]


def test_more_gpus_split_the_weights():
    one = _memory.memory_fit("someone/Foo-20B", "gpu-tesla-v100s", 1, "", "", 2048)
    four = _memory.memory_fit("someone/Foo-20B", "gpu-tesla-v100s", 4, "", "", 2048)
    assert one["verdict"] == "refuse"
    assert four["verdict"] in ("fits", "tight")
    assert four["need_gib"] < one["need_gib"]


def test_long_context_of_a_known_model_is_refused_and_a_guess_only_warned():
    known = _memory.memory_fit("meta-llama/Llama-2-7b-chat-hf", "gpu-tesla-v100", 1, "", "", 65536)
    assert known["verdict"] == "refuse" and "max_model_len" in known["message"]
    guessed = _memory.memory_fit("someone/Foo-3B", "gpu-tesla-v100", 1, "", "", 65536)
    assert guessed["verdict"] == "tight" and "guess" in guessed["message"]


def test_unknown_size_and_unknown_gpu_are_not_judged():
    assert _memory.memory_fit("someone/mystery", "gpu-tesla-v100")["verdict"] == "unknown"
    assert _memory.memory_fit("a/Foo-7B", "gpu-a100")["verdict"] == "unknown"


def test_variable_prefix_in_advice():
    fit = _memory.memory_fit("a/Foo-30B", "gpu-tesla-v100", 1, "", "", 4096, 0.9, "vllm_")
    assert "vllm_gpu_count" in fit["message"]


CAPACITY = {
    "fits": False, "reason": "quota allows 2 GPUs, you asked for 3", "cluster_view": True,
    "quota": {"hard": 4, "used": 2, "free": 2},
    "nodes": [
        {"name": "n1", "schedulable": True, "free": 1},
        {"name": "n2", "schedulable": True, "free": 2},
        {"name": "n3", "schedulable": False, "free": 4},
    ],
}


def test_release_counts_the_held_gpus_on_their_node():
    got = capacity_after_release(CAPACITY, 3, held=2, held_node="n1")
    assert got["fits"] is True and "3 free on n1" in got["reason"]


def test_release_still_short_names_quota_and_node():
    got = capacity_after_release(CAPACITY, 4, held=1, held_node="n2")
    assert got["fits"] is False
    assert "quota allows 3" in got["reason"] and "largest is 3 on n2" in got["reason"]


def test_nothing_held_keeps_the_module_answer():
    assert capacity_after_release(CAPACITY, 3) == {"fits": False, "reason": CAPACITY["reason"]}


def test_release_without_cluster_view_checks_the_quota_only():
    cap = dict(CAPACITY, cluster_view=False, nodes=[])
    assert capacity_after_release(cap, 3, held=1)["fits"] is True
    assert capacity_after_release(cap, 4, held=1)["fits"] is False


def _deployment(args, gpus=2, shm="16Gi", name="vllm"):
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
            "spec": {"template": {"spec": {
                "containers": [{"name": name, "image": "img:1", "args": args,
                                "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
                "volumes": [{"name": "cache", "emptyDir": {}},
                            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]}}}}


def test_live_settings_of_vllm():
    cfg = {"model": "m/Foo-7B-GPTQ", "served_model_name": "foo", "gpu_count": 2, "gpu_type": "gpu-tesla-v100",
           "dtype": "auto", "quantization": "gptq", "max_model_len": 2048, "gpu_memory_utilization": 0.9,
           "max_num_seqs": 8, "block_size": 16, "swap_space": 4, "enforce_eager": True}
    got = _live.live_settings(_deployment(e.vllm_args(cfg)))
    assert got["engine"] == "vllm" and got["model"] == "m/Foo-7B-GPTQ" and got["served_model_name"] == "foo"
    assert got["quantization"] == "gptq" and got["max_model_len"] == 2048 and got["tensor_parallel"] == 2
    assert got["gpu_count"] == 2 and got["shm_size"] == "16Gi" and got["dtype"] == "half"


def test_live_settings_of_tgi_and_inline_flags():
    got = _live.live_settings(_deployment(["--model-id=m/Bar-7B", "--max-input-tokens", "1024",
                                           "--max-total-tokens", "2048", "--dtype", "float16"], gpus=1, name="tgi"))
    assert got["model"] == "m/Bar-7B" and got["served_model_name"] == "m/Bar-7B"
    assert got["quantization"] == "" and got["max_input_tokens"] == 1024 and got["max_total_tokens"] == 2048
    assert got["tensor_parallel"] == 1 and got["gpu_count"] == 1
    assert _live.live_settings(None) is None
