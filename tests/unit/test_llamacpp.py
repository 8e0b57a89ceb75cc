"""The llama.cpp engine: its rules and command line (plugins/module_utils/_llamacpp.py) and its entry
in the engine registry (_engines.Llamacpp) through the plan, the manifests and the live parser."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _llamacpp as L

QWEN = "bartowski/Qwen2.5-7B-Instruct-GGUF"


def cfg(**over):
    base = {"name": "llamacpp", "namespace": "wstu002-default", "image": L.DEFAULT_IMAGE, "model": QWEN + ":Q4_K_M",
            "model_file": "", "served_model_name": "", "gpu_type": "gpu-tesla-v100", "gpu_count": 1,
            "ctx_size": 8192, "parallel": 4, "gpu_layers": "all", "split_mode": "layer", "tensor_split": "",
            "flash_attn": "auto", "extra_args": [], "service_port": 8000, "cpu": "4", "memory": "16Gi",
            "storage_class": "", "wait_timeout": 2700, "unschedulable_grace": 120, "pod_annotations": {},
            "startup_timeout": 2400, "cache_size": "50Gi", "cache_emptydir": False}
    base.update(over)
    return base


def errors(**over):
    return L.check(cfg(**over)).as_dict()["errors"]


def test_the_default_configuration_passes():
    assert L.check(cfg()).as_dict() == {"ok": True, "errors": [], "variables": [], "warnings": []}


@pytest.mark.parametrize("image,needle", [
    ("ghcr.io/ggml-org/llama.cpp:server-cuda13-b11312", "CUDA 13 images are built without compute capability 7.0"),
    ("ghcr.io/ggml-org/llama.cpp:server-cuda12", "has no build number"),
    ("ghcr.io/ggml-org/llama.cpp:server-b11312", "the 'cpu' build does not use NVIDIA GPUs"),
    ("ghcr.io/ggml-org/llama.cpp:server-vulkan-b11312", "the 'vulkan' build does not use NVIDIA GPUs"),
    ("ghcr.io/ggml-org/llama.cpp:full-cuda12-b11312", "not a llama.cpp server image tag"),
    ("ghcr.io/ggml-org/llama.cpp:latest", "is not pinned"),
])
def test_images_a_v100_cannot_run_or_that_float_are_refused(image, needle):
    found = errors(image=image)
    assert len(found) == 1 and needle in found[0] and found[0].startswith("llamacpp_image="), found


def test_cuda13_is_fine_where_the_gpu_has_it_and_other_builds_warn():
    report = L.check(cfg(image="ghcr.io/ggml-org/llama.cpp:server-cuda-b11400")).as_dict()
    assert report["ok"] and len(report["warnings"]) == 2  # 'cuda' may become CUDA 13; another build
    digest = "ghcr.io/ggml-org/llama.cpp@sha256:" + "a" * 64
    assert L.check(cfg(image=digest)).as_dict()["ok"]


def test_model_spec_and_file():
    assert errors(model=QWEN)[0].startswith("llamacpp_model='%s': no GGUF file chosen" % QWEN)
    assert errors(model=QWEN, model_file="Qwen2.5-7B-Instruct-Q5_K_M.gguf") == []
    assert "names a quantization already" in errors(model_file="x-Q5_K_M.gguf")[0]
    assert "not the name of a .gguf file" in errors(model=QWEN, model_file="../etc/passwd")[0]
    assert "not a quantization name" in errors(model=QWEN + ":Q4;rm")[0]


def test_gguf_bits_from_the_file_or_the_quant():
    assert L.gguf_quant(QWEN + ":q4_k_m") == "Q4_K_M" and L.gguf_bits(QWEN + ":Q8_0") == 8.5
    assert L.gguf_quant(QWEN, "Qwen2.5-7B-Instruct-Q5_K_M.gguf") == "Q5_K_M"
    assert L.gguf_quant(QWEN, "model-IQ4_XS.gguf") == "IQ4_XS"
    assert L.gguf_bits("someone/model-GGUF") is None


def test_slots_split_and_layers():
    assert "leaves each slot 128 tokens" in errors(ctx_size=512, parallel=4)[0]
    assert "has 3 parts for llamacpp_gpu_count=2" in errors(gpu_count=2, tensor_split="1,1,1")[0]
    assert errors(gpu_count=2, tensor_split="3,1") == []
    assert "not a split mode" in errors(split_mode="rows")[0]
    assert "not a layer count" in errors(gpu_layers="most")[0]
    warned = L.check(cfg(gpu_layers=20, split_mode="tensor")).as_dict()
    assert warned["ok"] and len(warned["warnings"]) == 2
    assert "1 to 4" in errors(gpu_count=5)[0]


def test_flags_the_role_sets_are_refused_in_extra_args():
    found = errors(extra_args=["--ctx-size", "4096"])
    assert found and "llamacpp_ctx_size" in found[0], found
    assert "llamacpp_api_key" in errors(extra_args=["--api-key", "x"])[0]


def test_command_line():
    one = L.args(cfg())
    assert one[:6] == ["--host", "0.0.0.0", "--port", "8000", "--hf-repo", QWEN + ":Q4_K_M"]
    assert one[one.index("--alias") + 1] == QWEN + ":Q4_K_M"
    assert one[one.index("--gpu-layers") + 1] == "all" and "--metrics" in one
    assert one[one.index("--split-mode") + 1] == "none" and "--api-key" not in one
    two = L.args(cfg(model=QWEN, model_file="Qwen2.5-7B-Instruct-Q4_K_M.gguf", gpu_count=2, tensor_split="3,1",
                     served_model_name="qwen", extra_args=["--seed", "7"]))
    assert two[two.index("--hf-file") + 1] == "Qwen2.5-7B-Instruct-Q4_K_M.gguf"
    assert two[two.index("--split-mode") + 1] == "layer" and two[two.index("--tensor-split") + 1] == "3,1"
    assert two[two.index("--alias") + 1] == "qwen" and two[-2:] == ["--seed", "7"]


def test_env_keeps_the_model_and_the_cuda_jit_cache_on_the_pvc():
    env = dict((e["name"], e["value"]) for e in L.env(cfg()))
    assert env["LLAMA_CACHE"] == "/models" and env["CUDA_CACHE_PATH"].startswith("/models/")


def test_memory_fit_uses_the_gguf_bits():
    fits = L.memory_fit(cfg())  # Qwen2.5-7B at 4.89 bits, 8192 tokens, one V100 16 GB
    assert fits["verdict"] in ("fits", "tight") and fits["bits"] == 4.89 and 4.0 < fits["weights_gib"] < 4.5, fits
    f16 = L.memory_fit(cfg(model=QWEN + ":F16"))
    assert f16["verdict"] == "refuse" and "a smaller GGUF type" in f16["message"], f16
    assert L.memory_fit(cfg(model=QWEN + ":F16", gpu_count=2, gpu_type="gpu-tesla-v100s"))["verdict"] != "refuse"


# --- the engine of the registry: plan, objects, live Deployment ---------------------------------------

import pathlib  # noqa: E402

import yaml  # noqa: E402

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _manifests, _plan  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
SMOL = "bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M"
ENGINE = _engines.get("llamacpp")


def role_defaults():
    return yaml.safe_load((REPO / "roles" / "llamacpp" / "defaults" / "main.yml").read_text())


def host(**values):
    values.setdefault("icc_engine", "llamacpp")
    return _plan.Inputs(lambda name: values.get(name, _plan.MISSING), "wstu002-default")


def planned(base="inventory", request=None, live=None, **values):
    inp = host(**values)
    llm, names = _plan.resolve(inp, ENGINE, role_defaults(), base, request, live)
    return inp, llm, names, _plan.role_config(inp, ENGINE, role_defaults(), llm)


def test_icc_variables_become_the_llamacpp_role_configuration():
    _inp, llm, names, cfg = planned(icc_model=SMOL, icc_max_total_tokens=4096, icc_gpu_count=2)
    assert cfg["model"] == SMOL and cfg["served_model_name"] == SMOL and cfg["ctx_size"] == 4096
    assert cfg["gpu_count"] == 2 and names["llamacpp_model"] == "icc_model"
    assert names["llamacpp_ctx_size"] == "icc_max_total_tokens"
    args = ENGINE.args(cfg)
    assert args[args.index("--split-mode") + 1] == "layer" and args[args.index("--gpu-layers") + 1] == "all"
    assert ENGINE.check(cfg)["errors"] == []


def test_the_plan_refuses_icc_quantization_and_a_model_without_a_gguf_type_naming_icc_variables():
    inp, llm, names, cfg = planned(icc_model="Qwen/Qwen2.5-7B-Instruct", icc_quantization="gptq")
    refusals, _warnings, _fit = _plan.checks(inp, ENGINE, llm, names, cfg)
    text = " ".join(refusals)
    assert "icc_quantization=gptq: llama.cpp takes no quantization setting" in text
    assert "icc_model -> llamacpp_model='Qwen/Qwen2.5-7B-Instruct': no GGUF file chosen" in text


def test_the_memory_fit_uses_the_gguf_bits_and_names_icc_variables():
    inp, llm, names, cfg = planned(icc_model="bartowski/Qwen2.5-72B-Instruct-GGUF:Q4_K_M")
    refusals, _w, fit = _plan.checks(inp, ENGINE, llm, names, cfg)
    assert fit["bits"] == GGUF_Q4KM and fit["verdict"] == "refuse"
    assert any("icc_gpu_count" in r and "icc_memory_check=false" in r for r in refusals)
    inp, llm, names, cfg = planned(icc_model="bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M")
    assert _plan.checks(inp, ENGINE, llm, names, cfg)[2]["verdict"] == "fits"


GGUF_Q4KM = L.GGUF_BITS["Q4_K_M"]


def test_the_deployment_reads_back_as_what_the_plan_applied():
    _inp, llm, _names, cfg = planned(icc_model=SMOL, icc_max_total_tokens=4096, llamacpp_parallel=2,
                                     llamacpp_api_key_secret="my-key")
    cfg.update(api_key_secret="my-key")
    objects = _manifests.engine_objects(ENGINE, cfg, key_secret="my-key")
    dep = [o for o in objects if o["kind"] == "Deployment"][0]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = dict((e["name"], e.get("value") or e["valueFrom"]["secretKeyRef"]["name"]) for e in container["env"])
    assert env["LLAMA_API_KEY"] == "my-key" and env["LLAMA_CACHE"] == "/models"
    assert container["volumeMounts"][0] == {"name": "cache", "mountPath": "/models"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    live = ENGINE.live(dep)
    assert (live["engine"], live["model"], live["served_model_name"], live["max_len"]) == ("llamacpp", SMOL, SMOL, 4096)
    assert live["api_key_secret"] == "my-key" and live["settings"]["parallel"] == 2
    # scale from it: the slots and the key stay, the split follows the GPUs
    llm2, _names2 = _plan.resolve(host(), ENGINE, role_defaults(), "live", {"gpu_count": 2}, live)
    cfg2 = _plan.role_config(host(), ENGINE, role_defaults(), llm2)
    assert llm2["carried"] == {"parallel": 2} and llm2["api_key_secret"] == "my-key"
    assert cfg2["ctx_size"] == 4096 and cfg2["model"] == SMOL and cfg2["gpu_count"] == 2
    change = _plan.changes(llm2, dict(live, max_model_len=live["max_len"]), cfg2, live["settings"])
    assert change["restart"] and {"setting": "gpu_count", "from": 1, "to": 2} in change["changes"]


# --- its /metrics (the names llama-server b11312 prints, from the sandbox's real binary) ----------------

LLAMA_METRICS = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total %(prompt)d
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 287
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total %(predicted)d
# TYPE llamacpp:prompt_tokens_seconds gauge
llamacpp:prompt_tokens_seconds 94.5358
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing %(running)d
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
"""


def test_llm_health_and_the_monitor_read_llama_servers_metric_names():
    from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor, _metrics

    text = LLAMA_METRICS % {"prompt": 49, "predicted": 64, "running": 2}
    summary = _metrics.summarize(_metrics.parse_prometheus(text))
    assert summary["engine"] == "llamacpp" and summary["requests_running"] == 2 and summary["requests_waiting"] == 0
    assert summary["prompt_tokens_total"] == 49 and summary["generation_tokens_total"] == 64
    assert summary["raw"]["llamacpp:prompt_tokens_cached_total"] == 287
    first = _gpu_monitor.engine_snapshot(text)
    later = _gpu_monitor.engine_snapshot(LLAMA_METRICS % {"prompt": 149, "predicted": 264, "running": 1})
    assert first["known"] and first["names"]["generation_tokens_per_s"] == "llamacpp:tokens_predicted_total"
    figures, reset = _gpu_monitor.engine_figures(first, later, 10.0)
    assert figures["generation_tokens_per_s"] == 20.0 and figures["prompt_tokens_per_s"] == 10.0
    assert figures["requests_running"] == 1 and not reset


def test_every_engine_names_only_figures_the_readers_know():
    for engine in _engines.ENGINES.values():
        assert engine.metrics and set(engine.metrics) <= set(_engines.METRIC_KINDS), engine.name
        assert all(n.startswith(engine.metric_prefix) for names in engine.metrics.values() for n in names)
