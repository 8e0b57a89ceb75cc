"""Model facts from the Hub (plugins/module_utils/_model_facts.py) and the checks and memory fit they
drive (_plan, _memory, _engine): pure logic. The facts are built from what the sandbox's Hub double
serves (tests/cluster/models/<repo>/config.json and tests/cluster/hub/models.json: the models' public
configs and parameter counts), so the memory fit below runs on real parameter counts and KV shapes."""

from __future__ import annotations

import json
import pathlib

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _engines, _memory, _model_facts, _plan

REPO = pathlib.Path(__file__).resolve().parents[2]
INDEX = json.loads((REPO / "tests" / "cluster" / "hub" / "models.json").read_text())
HUB = "http://hub.example"


def hub_facts(repo):
    """The facts _hub.read gives for a repository of the double (its config.json and counts)."""
    entry = INDEX[repo]
    path = REPO / "tests" / "cluster" / "models" / repo / "config.json"
    config = json.loads(path.read_text()) if path.exists() else None
    params = entry.get("safetensors") or entry.get("safetensors_file") or {}
    return _model_facts.facts_of(repo, config, params, entry.get("gated", False), HUB, gguf=entry.get("gguf"))


def llm(engine="vllm", **over):
    out = {"engine": engine, "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "quantization": "", "max_model_len": 4096,
           "max_input_tokens": 2048, "gpu_type": "gpu-tesla-v100", "gpu_count": 1, "memory_fraction": 0.9,
           "hf_token_secret": ""}
    out.update(over)
    return out


def run_checks(facts, engine="vllm", **over):
    e = _engines.get(engine)
    return _model_facts.checks(facts, e, llm(engine, **over), {}, _engine.GPU_TYPES["gpu-tesla-v100"], e.quant_min_cc)


def test_facts_of_the_public_smollm2_config():
    f = hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert f["status"] == "ok" and f["source"] == "hub"
    assert (f["layers"], f["heads"], f["kv_heads"], f["head_dim"]) == (30, 9, 3, 64)
    assert f["max_position"] == 8192 and f["torch_dtype"] == "bfloat16" and f["params_b"] == 0.1345
    assert (f["quant_method"], f["quant_bits"]) == (None, None)


def test_a_gptq_checkpoint_is_counted_unpacked():
    # TheBloke's GPTQ export of Mistral-7B: 0.88 G packed I32 (8 weights each) and 0.32 G F16.
    f = hub_facts("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ")
    assert (f["quant_method"], f["quant_bits"]) == ("gptq", 4)
    assert f["params_b"] == pytest.approx(7.36, abs=0.01)
    assert _model_facts.parameters({"I32": 10, "F16": 5}, bits=8) == 45
    assert _model_facts.parameters({"U8": 10, "F16": 5}, bits=4) == 25
    assert _model_facts.parameters({"I32": 10}) == 10  # not a packed checkpoint: counted as stored


def test_max_position_as_vllm_derives_it():
    assert hub_facts("meta-llama/Llama-3.2-1B-Instruct")["max_position"] == 131072  # llama3 rope: already counted
    yarn = {"max_position_embeddings": 32768, "rope_scaling": {"type": "yarn", "factor": 4.0}}
    assert _model_facts.max_position(yarn) == 131072
    assert _model_facts.max_position({"n_positions": 1024}) == 1024
    assert _model_facts.max_position({"max_position_embeddings": 8192, "seq_length": 4096}) == 4096  # the smallest
    assert _model_facts.max_position({"max_position_embeddings": 4096, "rope_scaling": {
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048}}) == 8192
    assert _model_facts.max_position({"model_type": "bloom"}) is None  # ALiBi: no limit
    nested = {"text_config": {"num_attention_heads": 8, "max_position_embeddings": 4096}}
    assert _model_facts.max_position(nested) == 4096


def test_a_gguf_repository_has_the_hubs_gguf_summary():
    f = hub_facts("bartowski/SmolLM2-135M-Instruct-GGUF")
    assert f["params_b"] == 0.1345 and f["max_position"] == 8192 and f["heads"] is None
    assert _model_facts.repository("bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0") == "bartowski/SmolLM2-135M-Instruct-GGUF"


# --- memory fit on real parameter counts ---------------------------------------------------------

def test_memory_fit_uses_the_hub_parameters_and_kv_shape():
    f = hub_facts("Qwen/Qwen2.5-7B-Instruct")
    fit = _memory.memory_fit("Qwen/Qwen2.5-7B-Instruct", "gpu-tesla-v100", 1, max_model_len=4096, facts=f)
    # 7.62 G parameters in float16: 14.2 GiB of weights, more than a 16 GB V100 holds beside the CUDA context.
    assert fit["source"] == "hub" and fit["params_b"] == pytest.approx(7.6156, abs=1e-3)
    assert fit["weights_gib"] == pytest.approx(14.19, abs=0.01) and fit["verdict"] == "refuse"
    # GQA: 2 x 28 layers x 4 KV heads x 128 x 2 bytes per token, 4096 tokens = 0.22 GiB.
    assert fit["kv_gib"] == pytest.approx(0.22, abs=0.01)
    two = _memory.memory_fit("Qwen/Qwen2.5-7B-Instruct", "gpu-tesla-v100", 2, max_model_len=4096, facts=f)
    assert two["verdict"] in ("fits", "tight")


def test_memory_fit_of_a_quantized_checkpoint_takes_its_bits():
    f = hub_facts("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ")
    fit = _memory.memory_fit(f["model"], "gpu-tesla-v100", 1, max_model_len=4096, facts=f)
    assert fit["bits"] == 4 and fit["source"] == "hub" and fit["verdict"] == "fits"
    assert fit["weights_gib"] == pytest.approx(7.36e9 * 0.5 * 1.1 / 2 ** 30, abs=0.02)


def test_memory_fit_of_a_model_outside_the_table_is_judged_from_the_hub():
    f = hub_facts("Qwen/Qwen2.5-0.5B-Instruct")
    assert _memory.model_size_hint(f["model"])["source"] == "name"  # the table does not know it
    fit = _memory.memory_fit(f["model"], "gpu-tesla-v100", 1, max_model_len=32768, facts=f)
    assert fit["source"] == "hub" and fit["params_b"] == pytest.approx(0.494, abs=1e-3) and fit["verdict"] == "fits"
    # 2 x 24 layers x 2 KV heads x 64 x 2 bytes per token: 32768 tokens = 0.375 GiB
    assert fit["kv_gib"] == pytest.approx(0.375, abs=0.006)  # rounded to 2 places


def test_a_gated_repository_without_config_keeps_the_table_architecture():
    facts = _model_facts.facts_of("meta-llama/Llama-2-13b-chat-hf", None, {"F16": 13015864320}, "manual", HUB)
    hint = _memory.model_size_hint("meta-llama/Llama-2-13b-chat-hf", facts)
    assert hint["params_b"] == pytest.approx(13.0159, abs=1e-3) and hint["heads"] == 40 and hint["source"] == "hub"


# --- the heads rule from the Hub's heads ------------------------------------------------------------

def test_the_heads_rule_reads_the_hub_heads():
    f = hub_facts("Qwen/Qwen2.5-0.5B-Instruct")  # 14 heads, 2 KV heads: not in the table
    v100 = _engine.GPU_TYPES["gpu-tesla-v100"]
    report = _engine.Report()
    _engine.check_tensor_parallel(report, "vllm", "vllm_gpu_count", f["model"], 4, v100, f)
    assert report.errors and "14 attention heads and 2 KV heads" in str(report.errors[0])
    assert "1 or 2 (the GPU counts this model allows" in str(report.errors[0])
    two = _engine.Report()
    _engine.check_tensor_parallel(two, "vllm", "vllm_gpu_count", f["model"], 2, v100, f)
    assert not two.errors and not two.warnings
    guess = _engine.Report()
    _engine.check_tensor_parallel(guess, "vllm", "vllm_gpu_count", f["model"], 4, v100)
    assert not guess.errors and "not known" in guess.warnings[0]  # without the Hub: a warning only


# --- the checks only the facts allow ------------------------------------------------------------------

def test_a_model_that_does_not_exist_is_refused_naming_the_variable():
    facts = _model_facts.facts_of("HuggingFaceTB/SmolLM2-135M-Instrcut", endpoint=HUB, status="not_found")
    refusals, _w = run_checks(facts, model="HuggingFaceTB/SmolLM2-135M-Instrcut")
    assert len(refusals) == 1 and refusals[0].startswith("icc_model=HuggingFaceTB/SmolLM2-135M-Instrcut:")
    assert "Check the spelling on %s/HuggingFaceTB/SmolLM2-135M-Instrcut" % HUB in refusals[0]


def test_a_token_without_access_and_a_bad_token_are_refused():
    no = _model_facts.facts_of("meta-llama/Llama-3.2-1B-Instruct", endpoint=HUB, status="no_access", gated="manual")
    refusals, _w = run_checks(no, model="meta-llama/Llama-3.2-1B-Instruct")
    assert "icc_hf_token does not give access to icc_model=meta-llama/Llama-3.2-1B-Instruct" in refusals[0]
    assert "Accept its license on %s/meta-llama/Llama-3.2-1B-Instruct" % HUB in refusals[0]
    bad = _model_facts.facts_of("meta-llama/Llama-3.2-1B-Instruct", endpoint=HUB, status="bad_token")
    refusals, _w = run_checks(bad)
    assert refusals[0].startswith("icc_hf_token: the Hub does not accept this token")


def test_a_context_above_the_model_limit():
    f = hub_facts("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    refusals, _w = run_checks(f, model=f["model"], max_model_len=4096)
    assert len(refusals) == 1 and refusals[0].startswith("icc_max_total_tokens=4096: ")
    assert "at most 2048 tokens" in refusals[0] and "Use icc_max_total_tokens 2048 or less" in refusals[0]
    assert run_checks(f, model=f["model"], max_model_len=2048) == ([], [])
    assert run_checks(f, model=f["model"], max_model_len=0)[0] == []  # 0: vLLM takes the model's own
    gguf = hub_facts("bartowski/SmolLM2-135M-Instruct-GGUF")
    refusals, warnings = run_checks(gguf, "llamacpp", model=gguf["model"] + ":Q8_0", max_model_len=16384)
    assert refusals == [] and "at most 8192 tokens" in warnings[0]  # llama.cpp runs it: a warning
    refusals, warnings = run_checks(f, "tgi", model=f["model"], max_model_len=4096)
    assert refusals == [] and "TGI runs it, but answers beyond that length are unreliable" in warnings[0]


def test_an_awq_checkpoint_on_v100_is_refused_even_with_empty_quantization():
    f = hub_facts("Qwen/Qwen2.5-7B-Instruct-AWQ")
    for engine in ("vllm", "tgi"):
        refusals, _w = run_checks(f, engine, model=f["model"])
        assert len(refusals) == 1 and refusals[0].startswith("icc_model=Qwen/Qwen2.5-7B-Instruct-AWQ: ")
        assert "AWQ checkpoint" in refusals[0] and "compute capability 7.5" in refusals[0]


def test_a_quantization_that_contradicts_the_checkpoint():
    plain = hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct")
    refusals, _w = run_checks(plain, quantization="gptq")
    assert refusals[0].startswith("icc_quantization=gptq: HuggingFaceTB/SmolLM2-135M-Instruct is not a GPTQ checkpoint")
    gptq = hub_facts("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ")
    assert run_checks(gptq, model=gptq["model"], quantization="gptq")[0] == []
    assert run_checks(gptq, model=gptq["model"])[0] == []  # '' : vLLM reads the method from the checkpoint
    assert run_checks(gptq, model=gptq["model"], quantization="gptq_marlin")[0] == []  # the same format
    refusals, _w = run_checks(gptq, model=gptq["model"], quantization="awq")
    assert "is a GPTQ checkpoint" in refusals[0]


def test_unreachable_gives_no_refusal_and_one_warning_text():
    facts = _model_facts.facts_of("a/b", endpoint=HUB, status="unreachable", detail="ConnectError: refused")
    assert run_checks(facts) == ([], [])
    assert not _model_facts.usable(facts) and _model_facts.usable(hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct"))
    text = _plan.hub_unreachable(facts)
    assert text.startswith("The Hugging Face Hub at %s could not be read (ConnectError: refused)" % HUB)
    assert _plan.hub_unreachable(hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct")) is None


# --- the plan's checks with facts ----------------------------------------------------------------------

def plan_checks(facts, **values):
    import yaml

    e = _engines.get("vllm")
    d = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())
    inp = _plan.Inputs(lambda name: values.get(name, _plan.MISSING), "wstu002-default")
    settings, names = _plan.resolve(inp, e, d)
    cfg = _plan.role_config(inp, e, d, settings)
    return _plan.checks(inp, e, settings, names, cfg, facts), inp


def test_the_plan_reads_gated_from_the_hub_and_keeps_icc_gated_models_as_a_deprecated_override():
    llama = "meta-llama/Llama-3.2-1B-Instruct"
    no_token = _model_facts.facts_of(llama, endpoint=HUB, status="no_token", gated="manual")
    (refusals, _w, _fit), inp = plan_checks(no_token, icc_model=llama)
    assert any("is a gated model (the Hub says so)" in r for r in refusals) and _plan.deprecations(inp) == []
    # Not gated on the Hub: the built-in organisation patterns no longer guess.
    open_llama = hub_facts("meta-llama/Llama-3.2-1B-Instruct")
    open_llama["gated"] = False
    (refusals, _w, _fit), _inp = plan_checks(open_llama, icc_model=llama)
    assert not any("gated" in r for r in refusals)
    # icc_gated_models still marks a model gated, with a deprecation.
    (refusals, _w, _fit), inp = plan_checks(hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct"),
                                            icc_model="HuggingFaceTB/SmolLM2-135M-Instruct",
                                            icc_gated_models=["^HuggingFaceTB/"])
    assert any("it matches icc_gated_models" in r for r in refusals)
    assert _plan.deprecations(inp)[0]["version"] == "2.0.0"
    # Unreachable: the built-in patterns are the fallback.
    down = _model_facts.facts_of(llama, endpoint=HUB, status="unreachable")
    (refusals, _w, _fit), _inp = plan_checks(down, icc_model=llama)
    assert any("it matches icc_gated_models" in r for r in refusals)


def test_a_gated_model_with_its_token_in_a_secret_is_not_refused_but_warned():
    llama = "meta-llama/Llama-3.2-1B-Instruct"
    no_token = _model_facts.facts_of(llama, endpoint=HUB, status="no_token", gated="manual")
    (refusals, warnings, _fit), _inp = plan_checks(no_token, icc_model=llama, vllm_hf_token_secret="hf-token")
    assert not any("gated" in r for r in refusals)
    assert any("the Secret hf-token, which the preflight does not read" in w for w in warnings)


def test_with_hub_facts_the_name_based_awq_guess_steps_back():
    # A repository whose name says AWQ but whose config.json has no quantization_config.
    facts = _model_facts.facts_of("someone/Foo-AWQ-notes", {"num_attention_heads": 8, "num_hidden_layers": 2,
                                                            "hidden_size": 512}, {"F16": 1000}, False, HUB)
    cfg = {"model": "someone/Foo-AWQ-notes", "gpu_type": "gpu-tesla-v100", "gpu_count": 1}
    with_hub = _engines.get("vllm").check(dict(_vllm_cfg(), **cfg), facts)
    without = _engines.get("vllm").check(dict(_vllm_cfg(), **cfg))
    assert not any("AWQ-quantized" in e for e in with_hub["errors"])
    assert any("AWQ-quantized" in e for e in without["errors"])


def _vllm_cfg():
    import yaml

    d = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())
    e = _engines.get("vllm")
    inp = _plan.Inputs(lambda name: _plan.MISSING, "wstu002-default")
    settings, _names = _plan.resolve(inp, e, d)
    return _plan.role_config(inp, e, d, settings)


def test_a_running_model_or_a_private_one_with_a_secret_token_is_only_warned():
    gone = _model_facts.facts_of(_SMOLLM, endpoint=HUB, status="not_found")
    (refusals, warnings, _fit), _inp = plan_checks(gone, icc_model=_SMOLLM)
    assert any("has no model of that name" in r for r in refusals)
    # scale of a model that runs: its files are in the cache PVC
    e = _engines.get("vllm")
    import yaml

    d = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())
    inp = _plan.Inputs(lambda name: {"icc_model": _SMOLLM}.get(name, _plan.MISSING), "wstu002-default")
    settings, names = _plan.resolve(inp, e, d)
    cfg = _plan.role_config(inp, e, d, settings)
    refusals, warnings, _fit = _plan.checks(inp, e, settings, names, cfg, gone, running=_SMOLLM)
    assert not refusals and any("It runs already" in w for w in warnings)
    (refusals, warnings, _fit), _inp = plan_checks(gone, icc_model=_SMOLLM, vllm_hf_token_secret="my-token")
    assert not refusals and any("Its token is in the Secret my-token" in w for w in warnings)


_SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_without_the_hub_the_name_warns_of_a_quantization_it_contradicts():
    """Issue 17: the example's icc_quantization gptq with a model that is no GPTQ checkpoint passed the
    preflight. With the Hub it is refused from config.json (above); offline the name is all there is."""
    def down(model):
        return _model_facts.facts_of(model, endpoint=HUB, status="unreachable")

    model = "mistralai/Mistral-7B-Instruct-v0.2"
    (refusals, warnings, _fit), _inp = plan_checks(down(model), icc_model=model, icc_quantization="gptq")
    [warning] = [w for w in warnings if "probably not a GPTQ checkpoint" in w]
    assert warning.startswith("icc_quantization=gptq: icc_model=%s has no GPTQ in its name" % model), warning
    assert "Use icc_quantization '' for it" in warning and not any("GPTQ" in r for r in refusals)
    # a name that says GPTQ, or no quantization set: nothing to say
    for values in ({"icc_model": "TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", "icc_quantization": "gptq"},
                   {"icc_model": model}):
        (_r, warnings, _fit), _inp = plan_checks(down(values["icc_model"]), **values)
        assert not any("probably not" in w for w in warnings), warnings
    # a GGUF repository for vLLM
    gguf = "bartowski/SmolLM2-135M-Instruct-GGUF"
    (_r, warnings, _fit), _inp = plan_checks(down(gguf), icc_model=gguf)
    assert any("looks like a GGUF repository, which vLLM does not load by its id" in w for w in warnings), warnings
    # with the Hub's facts the name steps back
    (_r, warnings, _fit), _inp = plan_checks(hub_facts("HuggingFaceTB/SmolLM2-135M-Instruct"),
                                             icc_model="HuggingFaceTB/SmolLM2-135M-Instruct", icc_quantization="gptq")
    assert not any("probably not" in w for w in warnings), warnings
