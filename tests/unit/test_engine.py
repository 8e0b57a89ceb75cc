"""Engine rules (plugins/module_utils/_engine.py) and their filter plugin (plugins/filter/engine.py)."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.filter import engine as engine_filter
from ansible_collections.haw_icc.llm.plugins.module_utils import _engine
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import GFD_PRODUCT, GPU_TYPES


def vllm_cfg(**over):
    cfg = {
        "name": "vllm", "namespace": "wstu002-default", "image": "vllm/vllm-openai:v0.8.5",
        "model": "TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", "served_model_name": "mistral",
        "gpu_type": "gpu-tesla-v100", "gpu_count": 1, "dtype": "auto", "quantization": "",
        "max_model_len": 4096, "gpu_memory_utilization": 0.9, "max_num_seqs": 32, "block_size": 16,
        "swap_space": 4, "enforce_eager": True, "extra_args": [], "cpu": "4", "memory": "16Gi",
        "shm_size": "", "cache_size": "50Gi", "storage_class": "", "cache_emptydir": False,
        "service_port": 8000, "startup_timeout": 2400, "wait_timeout": 2700,
    }
    cfg.update(over)
    return cfg


def tgi_cfg(**over):
    cfg = {
        "name": "tgi", "namespace": "wstu002-default",
        "image": "ghcr.io/huggingface/text-generation-inference:2.4.1",
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "gpu_type": "gpu-tesla-v100", "gpu_count": 1,
        "allow_sharding_on_v100": False, "quantize": "", "dtype": "", "max_input_tokens": 2048,
        "max_total_tokens": 4096, "max_batch_prefill_tokens": 4096, "cuda_memory_fraction": 0.85,
        "max_concurrent_requests": 128, "extra_args": [], "cpu": "4", "memory": "16Gi",
        "shm_size": "", "cache_size": "50Gi", "storage_class": "", "cache_emptydir": False,
        "service_port": 8000, "startup_timeout": 2400, "wait_timeout": 2700,
    }
    cfg.update(over)
    return cfg


def webui_cfg(**over):
    cfg = {
        "name": "webui", "namespace": "wstu002-default", "image": "ghcr.io/open-webui/open-webui:v0.6.18",
        "openai_api_base_url": "http://vllm:8000/v1", "openai_api_key_secret": "vllm-api-key",
        "data_size": "5Gi", "storage_class": "", "cpu": "1", "memory": "2Gi", "service_port": 3000,
        "ingress_enabled": False, "ingress_host": "", "ingress_class": "nginx",
        "ingress_issuer": "letsencrypt-production", "startup_timeout": 600, "wait_timeout": 900,
    }
    cfg.update(over)
    return cfg


def refused(report, variable):
    """The InputErrors of a report for one variable."""
    return [e for e in report.errors if e.variable == variable]


# --- defaults pass --------------------------------------------------------------------------------

@pytest.mark.parametrize("check,cfg", [
    (_engine.check_vllm, vllm_cfg()), (_engine.check_tgi, tgi_cfg()), (_engine.check_webui, webui_cfg()),
])
def test_defaults_are_accepted_without_warnings(check, cfg):
    report = check(cfg)
    assert report.errors == []
    assert report.warnings == []


def test_default_images_are_pinned_and_in_known_good_range():
    assert _engine.image_version(_engine.VLLM_DEFAULT_IMAGE) == (0, 8, 5)
    low, high = _engine.VLLM_KNOWN_GOOD
    assert low <= _engine.image_version(_engine.VLLM_DEFAULT_IMAGE) <= high
    assert _engine.image_version(_engine.TGI_DEFAULT_IMAGE) >= _engine.TGI_MIN_VERSION
    assert _engine.image_version(_engine.WEBUI_DEFAULT_IMAGE) >= _engine.WEBUI_MIN_VERSION


# --- vLLM V100 rules ------------------------------------------------------------------------------

def test_vllm_bf16_refused_on_v100_with_advice():
    report = _engine.check_vllm(vllm_cfg(dtype="bfloat16"))
    [err] = refused(report, "vllm_dtype")
    assert "bfloat16" in str(err) and "8.0" in str(err) and "7.0" in str(err)
    assert "half" in err.hint


@pytest.mark.parametrize("gpu_type", sorted(GPU_TYPES))
def test_vllm_auto_dtype_becomes_half_below_cc8(gpu_type):
    args = _engine.vllm_args(vllm_cfg(gpu_type=gpu_type))
    assert args[args.index("--dtype") + 1] == "half"


def test_vllm_auto_dtype_stays_auto_on_a_gpu_with_bf16(monkeypatch):
    monkeypatch.setitem(GPU_TYPES, "gpu-a100", {"product": "A100", "memory_mib": 40960,
                                                "compute_capability": (8, 0), "max_per_node": 8})
    args = _engine.vllm_args(vllm_cfg(gpu_type="gpu-a100"))
    assert args[args.index("--dtype") + 1] == "auto"
    assert _engine.check_vllm(vllm_cfg(gpu_type="gpu-a100", dtype="bfloat16")).errors == []


@pytest.mark.parametrize("quant", ["awq", "awq_marlin", "gptq_marlin", "marlin", "fp8"])
def test_vllm_quantizations_needing_newer_gpus_are_refused(quant):
    report = _engine.check_vllm(vllm_cfg(quantization=quant))
    [err] = refused(report, "vllm_quantization")
    assert quant in str(err) and "gptq" in err.hint.lower()


def test_vllm_gptq_is_accepted_and_passed():
    report = _engine.check_vllm(vllm_cfg(quantization="gptq"))
    assert report.errors == []
    args = _engine.vllm_args(vllm_cfg(quantization="gptq"))
    assert args[args.index("--quantization") + 1] == "gptq"


def test_vllm_unknown_quantization_refused():
    [err] = refused(_engine.check_vllm(vllm_cfg(quantization="int3")), "vllm_quantization")
    assert "int3" in str(err)


@pytest.mark.parametrize("model", ["TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "neuralmagic/Llama-3-8B-FP8"])
def test_vllm_model_that_looks_awq_or_fp8_refused_on_v100(model):
    [err] = refused(_engine.check_vllm(vllm_cfg(model=model)), "vllm_model")
    assert "quantized" in str(err)


def test_vllm_model_name_containing_awq_inside_a_word_is_fine():
    assert _engine.check_vllm(vllm_cfg(model="org/hawqish-model")).errors == []


@pytest.mark.parametrize("count", [0, 5, -1, True, "2"])
def test_vllm_gpu_count_outside_one_node_refused(count):
    [err] = refused(_engine.check_vllm(vllm_cfg(gpu_count=count)), "vllm_gpu_count")
    assert "1 to 4" in err.hint


@pytest.mark.parametrize("count", [1, 2, 4])
def test_vllm_tensor_parallel_size_is_the_gpu_count(count):
    args = _engine.vllm_args(vllm_cfg(gpu_count=count))
    assert args.count("--tensor-parallel-size") == 1
    assert args[args.index("--tensor-parallel-size") + 1] == str(count)


@pytest.mark.parametrize("arg", ["--tensor-parallel-size=2", "--tensor-parallel-size", "-tp", "--dtype=bfloat16",
                                 "--model=x", "--api-key=abc", "--pipeline-parallel-size=2"])
def test_vllm_extra_args_owned_by_the_role_refused(arg):
    [err] = refused(_engine.check_vllm(vllm_cfg(extra_args=["--seed", "1", arg])), "vllm_extra_args")
    assert arg in str(err)
    assert "vllm_" in err.hint or "fixed" in err.hint


def test_vllm_extra_args_passed_last():
    args = _engine.vllm_args(vllm_cfg(extra_args=["--seed", "7"]))
    assert args[-2:] == ["--seed", "7"]


def test_vllm_args_complete():
    args = _engine.vllm_args(vllm_cfg())
    for flag in ("--model", "--served-model-name", "--tensor-parallel-size", "--dtype", "--max-model-len",
                 "--gpu-memory-utilization", "--max-num-seqs", "--block-size", "--swap-space",
                 "--enforce-eager"):
        assert flag in args, flag
    assert "--api-key" not in args  # the key comes from a Secret through VLLM_API_KEY
    assert "--quantization" not in args
    assert args[args.index("--served-model-name") + 1] == "mistral"


def test_vllm_max_model_len_zero_means_model_default():
    assert "--max-model-len" not in _engine.vllm_args(vllm_cfg(max_model_len=0))


def test_vllm_unknown_image_version_warns_not_refuses():
    report = _engine.check_vllm(vllm_cfg(image="vllm/vllm-openai:v0.10.1"))
    assert report.errors == []
    assert any("outside the range known to work on V100" in w for w in report.warnings)


def test_vllm_image_by_digest_accepted():
    image = "vllm/vllm-openai@sha256:" + "a" * 64
    assert _engine.check_vllm(vllm_cfg(image=image)).errors == []


@pytest.mark.parametrize("image", ["vllm/vllm-openai:latest", "vllm/vllm-openai", "vllm/vllm-openai:main",
                                   "Vllm/VLLM:v1", "vllm openai:v1", ""])
def test_unpinned_or_bad_images_refused(image):
    [err] = refused(_engine.check_vllm(vllm_cfg(image=image)), "vllm_image")
    assert "v0.8.5" in err.hint


@pytest.mark.parametrize("model", ["org/model; rm -rf /", "org/$(id)", "a/b/c", "org/model name", "../etc",
                                   "org/`x`", "", None, "org/model|x"])
def test_model_names_with_shell_characters_refused(model):
    [err] = refused(_engine.check_vllm(vllm_cfg(model=model)), "vllm_model")
    assert "SmolLM2" in err.hint


@pytest.mark.parametrize("value", ["16GB", "16 Gi", "-1Gi", "abc", 16, "0"])
def test_memory_quantities_refused(value):
    [err] = refused(_engine.check_vllm(vllm_cfg(memory=value)), "vllm_memory")
    assert "16Gi" in err.hint


def test_memory_without_unit_is_bytes_and_refused():
    [err] = refused(_engine.check_vllm(vllm_cfg(memory="16")), "vllm_memory")
    assert "MiB" in str(err)


@pytest.mark.parametrize("value", ["4", "500m", "1.5", "2k"])
def test_cpu_quantities_accepted(value):
    assert refused(_engine.check_vllm(vllm_cfg(cpu=value)), "vllm_cpu") == []


def test_cpu_below_100m_refused():
    assert refused(_engine.check_vllm(vllm_cfg(cpu="10m")), "vllm_cpu")


@pytest.mark.parametrize("qty,amount", [
    ("16Gi", 16 * 2 ** 30), ("500M", 5e8), ("1.5", 1.5), ("100m", 0.1), ("1e3", 1000)])
def test_quantity_bytes(qty, amount):
    assert _engine.quantity_bytes(qty) == pytest.approx(amount)


@pytest.mark.parametrize("name", ["My-VLLM", "vllm_1", "-vllm", "x" * 41, "", "a.b"])
def test_names_must_be_dns_labels(name):
    [err] = refused(_engine.check_vllm(vllm_cfg(name=name)), "vllm_name")
    assert "RFC 1123" in str(err)


@pytest.mark.parametrize("port", [0, 70000, -1, "8000", True])
def test_ports_refused(port):
    [err] = refused(_engine.check_vllm(vllm_cfg(service_port=port)), "vllm_service_port")
    assert "65535" in err.hint


@pytest.mark.parametrize("key,value", [("gpu_memory_utilization", 1.5), ("gpu_memory_utilization", 0),
                                       ("max_num_seqs", 0), ("block_size", 12), ("swap_space", -1),
                                       ("enforce_eager", "yes"), ("max_model_len", -5),
                                       ("startup_timeout", 10), ("cache_size", "50GB"), ("shm_size", "8G B"),
                                       ("gpu_type", "gpu-a100"), ("dtype", "bf16"),
                                       ("served_model_name", "a b"), ("namespace", "Bad_NS"),
                                       ("storage_class", "Fast SSD"), ("wait_timeout", 5)])
def test_vllm_each_input_is_checked(key, value):
    report = _engine.check_vllm(vllm_cfg(**{key: value}))
    assert [e.variable for e in report.errors] == ["vllm_" + key], report.errors


def test_cache_size_not_checked_with_emptydir():
    assert _engine.check_vllm(vllm_cfg(cache_emptydir=True, cache_size="whatever")).errors == []


def test_error_message_names_variable_value_and_advice():
    report = _engine.check_vllm(vllm_cfg(memory="16GB"))
    text = str(report.errors[0])
    assert text.startswith("vllm_memory='16GB': ")
    assert "Use " in text


def test_vllm_multi_gpu_without_eager_warns():
    report = _engine.check_vllm(vllm_cfg(gpu_count=2, enforce_eager=False))
    assert report.errors == [] and report.warnings


# --- TGI ------------------------------------------------------------------------------------------

def test_tgi_sharding_refused_on_v100():
    [err] = refused(_engine.check_tgi(tgi_cfg(gpu_count=2)), "tgi_gpu_count")
    assert "flash attention" in str(err) and "tgi_allow_sharding_on_v100" in err.hint


def test_tgi_sharding_override_warns_loudly():
    tinyllama = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"  # 32 heads, 4 KV heads: 2 shards divide them
    report = _engine.check_tgi(tgi_cfg(model=tinyllama, gpu_count=2, allow_sharding_on_v100=True))
    assert report.errors == []
    assert any("tgi_allow_sharding_on_v100=true" in w and "fail" in w for w in report.warnings)
    args = _engine.tgi_args(tgi_cfg(model=tinyllama, gpu_count=2, allow_sharding_on_v100=True))
    assert args[args.index("--num-shard") + 1] == "2"


def test_tgi_single_gpu_has_no_shard_flags():
    args = _engine.tgi_args(tgi_cfg())
    assert "--num-shard" not in args and "--sharded" not in args


def test_tgi_quantize_or_dtype_never_both():
    args = _engine.tgi_args(tgi_cfg(quantize="gptq"))
    assert "--quantize" in args and "--dtype" not in args
    args = _engine.tgi_args(tgi_cfg())
    assert args[args.index("--dtype") + 1] == "float16" and "--quantize" not in args
    [err] = refused(_engine.check_tgi(tgi_cfg(quantize="gptq", dtype="float16")), "tgi_dtype")
    assert "never both" in str(err)


@pytest.mark.parametrize("quant", ["awq", "eetq", "marlin", "fp8"])
def test_tgi_quantizations_needing_newer_gpus_refused(quant):
    assert refused(_engine.check_tgi(tgi_cfg(quantize=quant)), "tgi_quantize")


def test_tgi_bf16_refused():
    assert refused(_engine.check_tgi(tgi_cfg(dtype="bfloat16")), "tgi_dtype")


@pytest.mark.parametrize("mi,mt", [(4096, 4096), (5000, 4096)])
def test_tgi_max_input_must_be_below_total(mi, mt):
    [err] = refused(_engine.check_tgi(tgi_cfg(max_input_tokens=mi, max_total_tokens=mt,
                                              max_batch_prefill_tokens=8192)), "tgi_max_input_tokens")
    assert "tgi_max_total_tokens" in str(err)


def test_tgi_prefill_at_least_input():
    assert refused(_engine.check_tgi(tgi_cfg(max_batch_prefill_tokens=1000)), "tgi_max_batch_prefill_tokens")


def test_tgi_old_image_without_messages_api_refused():
    [err] = refused(_engine.check_tgi(tgi_cfg(image="ghcr.io/huggingface/text-generation-inference:1.2.0")),
                    "tgi_image")
    assert "Messages API" in str(err)


def test_tgi_3x_warns():
    report = _engine.check_tgi(tgi_cfg(image="ghcr.io/huggingface/text-generation-inference:3.3.6"))
    assert report.errors == [] and report.warnings


@pytest.mark.parametrize("arg", ["--num-shard=2", "--sharded", "--quantize=awq", "--max-input-length=10"])
def test_tgi_owned_extra_args_refused(arg):
    assert refused(_engine.check_tgi(tgi_cfg(extra_args=[arg])), "tgi_extra_args")


def test_tgi_args_complete():
    args = _engine.tgi_args(tgi_cfg())
    for flag in ("--model-id", "--port", "--max-input-tokens", "--max-total-tokens",
                 "--max-batch-prefill-tokens", "--cuda-memory-fraction", "--max-concurrent-requests"):
        assert flag in args, flag
    assert args[args.index("--port") + 1] == "8000"
    assert args[args.index("--huggingface-hub-cache") + 1] == "/data"


# --- WebUI ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [("openai_api_base_url", "ftp://x"), ("openai_api_base_url", "vllm:8000"),
                                       ("data_size", "5GB"), ("image", "ghcr.io/open-webui/open-webui:main"),
                                       ("image", "ghcr.io/open-webui/open-webui:v0.5.20"),
                                       ("service_port", 70000), ("openai_api_key_secret", "Bad Secret")])
def test_webui_inputs_checked(key, value):
    report = _engine.check_webui(webui_cfg(**{key: value}))
    assert [e.variable for e in report.errors] == ["webui_" + key]


def test_webui_ingress_needs_a_host():
    report = _engine.check_webui(webui_cfg(ingress_enabled=True, ingress_host=""))
    assert [e.variable for e in report.errors] == ["webui_ingress_host"]
    assert _engine.check_webui(webui_cfg(ingress_enabled=True, ingress_host="chat.example.org")).errors == []


def test_webui_url_without_v1_warns():
    report = _engine.check_webui(webui_cfg(openai_api_base_url="http://vllm:8000"))
    assert report.errors == [] and report.warnings


# --- manifest helpers ----------------------------------------------------------------------------

@pytest.mark.parametrize("count,size", [(1, "8Gi"), (2, "16Gi"), (4, "32Gi")])
def test_shm_is_8gi_per_gpu_by_default(count, size):
    assert _engine.shm_size({"gpu_count": count, "shm_size": ""}) == size
    assert _engine.shm_size({"gpu_count": count, "shm_size": "2Gi"}) == "2Gi"


def test_resources_request_equals_limit():
    res = _engine.gpu_resources(2, "4", "16Gi")
    assert res["requests"] == res["limits"] == {"nvidia.com/gpu": "2", "cpu": "4", "memory": "16Gi"}


@pytest.mark.parametrize("gpu_type", sorted(GPU_TYPES))
def test_toleration_and_affinity_use_icc_facts(gpu_type):
    assert _engine.gpu_toleration(gpu_type) == {"key": gpu_type, "operator": "Exists", "effect": "NoSchedule"}
    term = _engine.node_affinity(gpu_type)["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["key"] == GFD_PRODUCT
    assert term["matchExpressions"][0]["values"] == [GPU_TYPES[gpu_type]["product"]]


def test_nccl_env_and_fallback():
    env = {e["name"]: e["value"] for e in _engine.nccl_env()}
    assert env["NCCL_P2P_DISABLE"] == "0" and env["NCCL_IB_DISABLE"] == "0" and env["NCCL_P2P_LEVEL"] == "NVL"
    env = {e["name"]: e["value"] for e in _engine.nccl_env(True)}
    assert env["NCCL_P2P_DISABLE"] == "1" and env["NCCL_IB_DISABLE"] == "1"


# --- filter plugin -------------------------------------------------------------------------------

def test_filter_plugin_exposes_the_same_rules():
    filters = engine_filter.FilterModule().filters()
    report = filters["engine_check"](vllm_cfg(dtype="bfloat16"), "vllm")
    assert report["ok"] is False and report["variables"] == ["vllm_dtype"]
    assert report["errors"][0].startswith("vllm_dtype='bfloat16'")
    assert filters["engine_check"](tgi_cfg(), "tgi") == {"ok": True, "errors": [], "variables": [],
                                                         "warnings": []}
    assert filters["engine_defaults"]("vllm")["image"] == _engine.VLLM_DEFAULT_IMAGE
    assert sorted(filters) == ["engine_api_key_secret", "engine_check", "engine_defaults"]  # the manifests are built in _manifests


def test_manifest_pieces():
    assert _engine.shm_size({"gpu_count": 3, "shm_size": ""}) == "24Gi"
    assert _engine.gpu_resources(2, "4", "16Gi")["limits"]["nvidia.com/gpu"] == "2"


def test_filter_unknown_kind_is_an_ansible_error():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError):
        engine_filter.engine_check({}, "ollama")
    with pytest.raises(AnsibleFilterError):
        engine_filter.engine_defaults("ollama")


def test_role_defaults_match_engine_defaults():
    """The defaults/main.yml images of the roles are the ones _engine.py knows to be good."""
    import pathlib

    import yaml
    roles = pathlib.Path(__file__).resolve().parents[2] / "roles"
    for role, image in (("vllm", _engine.VLLM_DEFAULT_IMAGE), ("tgi", _engine.TGI_DEFAULT_IMAGE),
                        ("webui", _engine.WEBUI_DEFAULT_IMAGE)):
        defaults = yaml.safe_load((roles / role / "defaults" / "main.yml").read_text())
        specs = yaml.safe_load((roles / role / "meta" / "argument_specs.yml").read_text())
        options = specs["argument_specs"]["main"]["options"]
        assert defaults[role + "_image"] == image
        assert set(defaults) == set(options), set(defaults) ^ set(options)
        for name, value in defaults.items():
            if "default" in options[name] and "{{" not in str(value):
                assert options[name]["default"] == value, name


def test_an_engine_is_removed_deployment_first_and_keeps_its_cache_unless_purged():
    from ansible_collections.haw_icc.llm.plugins.action.llm_engine import ActionModule
    from ansible_collections.haw_icc.llm.plugins.module_utils import _engines

    steps, kept = ActionModule.removal(_engines.get("tgi"), "tgi")
    assert [(kind, name) for _api, kind, name, _wait in steps][0] == ("Deployment", "tgi")
    assert steps[0][3] > 0  # its pods are waited for: their GPUs are free afterwards
    assert "PersistentVolumeClaim" not in [s[1] for s in steps] and kept == ["PersistentVolumeClaim/tgi-cache"]
    steps, kept = ActionModule.removal(_engines.get("vllm"), "vllm", purge=True)
    assert steps[-1][1:3] == ("PersistentVolumeClaim", "vllm-cache") and kept == []
    assert ("Secret", "vllm-api-key") in [s[1:3] for s in steps]  # vLLM has an API key Secret, TGI has none


@pytest.mark.parametrize("replaces", [{"engine": "ollama", "name": "x"}, {"engine": "vllm"}, "vllm", {"engine": "vllm", "name": ""}])
def test_replaces_must_be_the_plans_switch(replaces):
    from ansible.errors import AnsibleActionFail

    from ansible_collections.haw_icc.llm.plugins.action.llm_engine import ActionModule

    with pytest.raises(AnsibleActionFail, match="replaces=.*use the plan's switch"):
        ActionModule.replace(None, None, "wstu002-default", replaces, {})


@pytest.mark.parametrize("value, default, expected", [
    ("16", 32, 16), (" 4096 ", 4096, 4096), ("-1", 0, -1), ("16.5", 32, "16.5"), ("sixteen", 32, "sixteen"),
    ("0.85", 0.9, 0.85), ("1", 0.9, 1.0), ("nan", 0.9, "nan"), ("x", 0.9, "x"),
    ("false", True, False), ("Yes", False, True), ("maybe", True, "maybe"),
    ("16", "16", "16"), ("16", None, "16"), (16, 32, 16), ([1], 32, [1]), ("true", "{{ x }}", "true"),
])
def test_a_role_variable_given_with_e_has_the_type_of_its_default(value, default, expected):
    got = _engine.like_default(value, default)
    assert got == expected and type(got) is type(expected)  # pylint: disable=unidiomatic-typecheck


def test_an_e_number_passes_the_rules_as_the_same_number():
    report = _engine.check("vllm", vllm_cfg(max_num_seqs=_engine.like_default("16", 32)))
    assert report["errors"] == []
    assert _engine.check("vllm", vllm_cfg(max_num_seqs="16"))["errors"]  # not through like_default: refused
