"""The plan of deploy, scale and change_model (plugins/module_utils/_plan.py) and the engine
registry (plugins/module_utils/_engines.py): pure logic, no cluster."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _plan

REPO = pathlib.Path(__file__).resolve().parents[2]
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


def defaults(engine):
    return yaml.safe_load((REPO / "roles" / engine / "defaults" / "main.yml").read_text())


def inputs(host="wstu002-default", **values):
    return _plan.Inputs(lambda name: values.get(name, _plan.MISSING), host)


def live_vllm(**over):
    cur = {"engine": "vllm", "name": "vllm", "model": SMOLLM, "quantization": "", "max_model_len": 2048,
           "max_total_tokens": None, "max_input_tokens": None, "gpu_count": 1, "shm_size": "8Gi",
           "hf_token_secret": "my-token", "api_key_secret": "my-key"}
    cur.update(over)
    cur["max_len"] = cur["max_model_len"]
    return cur


def plan(engine="vllm", base="inventory", request=None, live=None, **values):
    e = _engines.get(engine)
    inp = inputs(**values)
    return _plan.resolve(inp, e, defaults(engine), base, request, live)


def test_registry_knows_each_engine_and_its_role_variables():
    assert _engines.names() == ["vllm", "tgi", "llamacpp"]
    vllm, tgi = _engines.get("vllm"), _engines.get("tgi")
    assert vllm.var("max_model_len") == "vllm_max_model_len" and tgi.var("max_model_len") == "tgi_max_total_tokens"
    assert vllm.var("quantization") == "vllm_quantization" and tgi.var("quantization") == "tgi_quantize"
    assert vllm.var("max_input_tokens") is None and tgi.var("max_input_tokens") == "tgi_max_input_tokens"
    assert vllm.role_vars_of("model") == ["vllm_model", "vllm_served_model_name"]
    assert vllm.api_key and not tgi.api_key
    assert _engines.get("ollama") is None
    llama = _engines.get("llamacpp")
    assert llama.var("max_model_len") == "llamacpp_ctx_size" and llama.var("quantization") is None
    assert llama.api_key and llama.api_key_env == "LLAMA_API_KEY"


@pytest.mark.parametrize("engine", ["vllm", "tgi", "llamacpp"])
def test_every_setting_variable_is_a_role_default(engine):
    """The registry names no variable its role does not have (one source of truth: the role)."""
    e, d = _engines.get(engine), defaults(engine)
    for setting in _engines.COMMON_VARS:
        for var in e.role_vars_of(setting):
            assert var in d, var
    assert e.memory_fraction[0] is None or e.prefix + e.memory_fraction[0] in d


def test_inventory_settings_and_their_user_names():
    llm, names = plan(icc_model=SMOLLM, icc_gpu_count="2", icc_max_total_tokens=2048)
    assert (llm["model"], llm["gpu_count"], llm["max_model_len"], llm["name"]) == (SMOLLM, 2, 2048, "vllm")
    assert names["vllm_model"] == names["vllm_served_model_name"] == "icc_model"
    assert names["vllm_gpu_count"] == "icc_gpu_count" and names["vllm_max_model_len"] == "icc_max_total_tokens"
    assert "vllm_quantization" not in names


def test_role_variables_apply_when_no_icc_variable_is_set():
    llm, names = plan(vllm_model=SMOLLM, vllm_gpu_count=3, vllm_max_model_len="1024")
    assert (llm["model"], llm["gpu_count"], llm["max_model_len"]) == (SMOLLM, 3, 1024)
    assert names == {}
    default, _names = plan()
    assert default["model"] == defaults("vllm")["vllm_model"] and default["max_model_len"] == 4096


def test_tgi_input_length_default_is_lowered_below_a_short_total_but_a_set_one_is_kept():
    llm, _names = plan("tgi", icc_max_total_tokens=1024)
    assert llm["max_input_tokens"] == 512
    kept, _names = plan("tgi", icc_max_total_tokens=1024, icc_max_input_length=2048)
    assert kept["max_input_tokens"] == 2048  # the rules refuse it, naming icc_max_input_length


def test_scale_starts_from_the_live_deployment_and_keeps_its_secrets():
    llm, names = plan(base="live", request={"gpu_count": 2}, live=live_vllm(),
                      icc_model="someone/else", vllm_hf_token_secret="")
    assert llm["model"] == SMOLLM and llm["gpu_count"] == 2 and llm["max_model_len"] == 2048
    assert llm["shm_size"] == ""  # a new count gets 8Gi per GPU
    assert llm["hf_token_secret"] == "my-token" and llm["api_key_secret"] == "my-key"
    assert names["vllm_gpu_count"] == "gpu_count" and "vllm_model" not in names


def test_a_live_custom_shm_size_is_kept_unless_the_count_changes():
    llm, _names = plan(base="live", request={"model": SMOLLM}, live=live_vllm(shm_size="20Gi"))
    assert llm["shm_size"] == "20Gi"


def test_the_wait_timeout_is_a_setting_of_the_run_not_of_the_pod():
    llm, _names = _plan.resolve(inputs(), _engines.get("vllm"), defaults("vllm"), wait_timeout=1800)
    cfg = _plan.role_config(inputs(), _engines.get("vllm"), defaults("vllm"), llm)
    assert llm["wait_timeout"] == 1800 and "wait_timeout" not in _plan.POD_SETTINGS
    # and the pod built from the role configuration is the same whatever the timeout
    from ansible_collections.haw_icc.llm.plugins.module_utils import _manifests

    def pod(c):
        return _manifests.engine_objects(_engines.get("vllm"), c)[-1]["spec"]["template"]

    assert pod(dict(cfg, wait_timeout=1800)) == pod(dict(cfg, wait_timeout=2700))


@pytest.mark.parametrize("values,needle", [
    ({"icc_engine": "ollama"}, "icc_engine=ollama / icc_webui=True: use icc_engine vllm or tgi"),
    ({"icc_webui": "maybe"}, "icc_webui=maybe"),
    ({"icc_namespace": "Bad_NS"}, "icc_namespace='Bad_NS': not a Kubernetes namespace name"),
    ({"icc_gpu_count": "two"}, "icc_gpu_count='two': not a whole number. Use a number of GPUs from 1 to 4"),
    ({"icc_gpu_count": 1.5}, "icc_gpu_count=1.5: not a whole number"),
    ({"tgi_max_input_tokens": "lots"}, "tgi_max_input_tokens='lots'"),
])
def test_input_problems_name_the_variable(values, needle):
    found = _plan.input_problems(inputs(**values))
    assert any(needle in p for p in found), found


def test_good_inputs_have_no_problems():
    assert _plan.input_problems(inputs(icc_gpu_count="2", icc_engine="tgi", icc_webui="false")) == []


def test_checks_name_the_users_variable_first():
    e = _engines.get("vllm")
    inp = inputs(icc_gpu_count=5, icc_model=SMOLLM)
    llm, names = _plan.resolve(inp, e, defaults("vllm"))
    refusals, _warnings, _fit = _plan.checks(inp, e, llm, names, _plan.role_config(inp, e, defaults("vllm"), llm))
    assert any(r.startswith("icc_gpu_count -> vllm_gpu_count=5") for r in refusals), refusals


def test_a_gated_model_without_a_token_is_refused_and_a_live_secret_counts_as_a_token():
    e = _engines.get("vllm")
    inp = inputs(icc_model="meta-llama/Llama-3.2-1B-Instruct")
    llm, names = _plan.resolve(inp, e, defaults("vllm"))
    refusals, _warnings, _fit = _plan.checks(inp, e, llm, names, _plan.role_config(inp, e, defaults("vllm"), llm))
    assert any("is a gated model" in r for r in refusals)
    llm["hf_token_secret"] = "kept-from-the-live-deployment"
    refusals, _warnings, _fit = _plan.checks(inp, e, llm, names, _plan.role_config(inp, e, defaults("vllm"), llm))
    assert not any("is a gated model" in r for r in refusals)


def test_changes_create_update_none_and_switch():
    llm, _names = plan(base="live", request={"gpu_count": 2}, live=live_vllm())
    previous, _names = plan(base="live", live=live_vllm())
    assert _plan.changes(llm, None)["action"] == "create"
    same = _plan.changes(previous, previous)
    assert same == {"action": "none", "restart": False, "changes": [], "switch": None}
    up = _plan.changes(llm, previous)
    assert up["action"] == "update" and up["restart"]
    assert up["changes"] == [{"setting": "gpu_count", "from": 1, "to": 2}]
    assert "gpu_count 1 -> 2" in _plan.summary_line("ns", up)
    tgi, _names = plan("tgi")
    sw = _plan.changes(tgi, previous)
    assert sw["action"] == "switch" and sw["switch"] == {"engine": "vllm", "name": "vllm"}
    assert "vllm (Deployment vllm) is removed first, its model cache PVC is kept" in _plan.summary_line("ns", sw)


def test_role_config_is_defaults_then_user_variables_then_the_plan():
    e = _engines.get("tgi")
    inp = inputs(tgi_cpu="8", icc_model=SMOLLM, tgi_hf_token="secret-value")
    llm, _names = _plan.resolve(inp, e, defaults("tgi"))
    cfg = _plan.role_config(inp, e, defaults("tgi"), llm)
    assert cfg["cpu"] == "8" and cfg["model"] == SMOLLM and cfg["max_total_tokens"] == 4096
    assert cfg["quantize"] == "" and "hf_token" not in cfg and cfg["memory"] == "16Gi"


# --- the class-wide GPU plan (module_utils/_class_plan.py) -----------------------------------------

from ansible_collections.haw_icc.llm.plugins.module_utils import _class_plan  # noqa: E402


def node(name, free, gpu_type="gpu-tesla-v100", schedulable=True):
    return {"name": name, "gpu_type": gpu_type, "free": free, "schedulable": schedulable}


def req(host, count=1, gpu_type="gpu-tesla-v100", quota_free=4, held=None, keeps=False):
    return {"host": host, "namespace": host, "gpu_type": gpu_type, "count": count, "quota_free": quota_free,
            "held": held or [], "keeps": keeps}


def test_class_plan_shares_the_free_gpus_in_inventory_order():
    plan = _class_plan.allocate([req("a"), req("b"), req("c"), req("d")], [node("n1", 1), node("n2", 1)])
    assert plan["granted"] == ["a", "b"] and [r["host"] for r in plan["refused"]] == ["c", "d"]
    assert plan["hosts"]["a"]["node"] != plan["hosts"]["b"]["node"]
    assert "1 x gpu-tesla-v100 not free" in plan["hosts"]["c"]["reason"]
    assert plan["summary"] == "2 of 4 namespaces get their GPUs; 2 refused: 2 x (1 x gpu-tesla-v100 not free)"


def test_best_fit_keeps_a_big_block_for_a_later_multi_gpu_request():
    plan = _class_plan.allocate([req("small"), req("big", count=4)], [node("n1", 4), node("n2", 1)])
    assert plan["hosts"]["small"]["node"] == "n2" and plan["hosts"]["big"]["node"] == "n1"
    assert plan["refused"] == []


def test_gpus_of_the_replaced_engine_count_for_its_own_namespace_only():
    plan = _class_plan.allocate([req("a", count=2, held=[("n1", 1)], quota_free=1), req("b")], [node("n1", 1)])
    assert plan["hosts"]["a"] == {"fits": True, "node": "n1", "reason": "2 GPUs on n1"}
    assert not plan["hosts"]["b"]["fits"]  # a's old GPU is not b's


def test_an_engine_that_keeps_running_needs_nothing_new():
    plan = _class_plan.allocate([req("a", keeps=True, held=[("n1", 1)]), req("b")], [node("n1", 0)])
    assert plan["hosts"]["a"]["fits"] and "keeps the 1 GPU" in plan["hosts"]["a"]["reason"]
    assert not plan["hosts"]["b"]["fits"]


def test_quota_type_and_schedulable_nodes():
    plan = _class_plan.allocate([req("q", count=2, quota_free=1), req("s", gpu_type="gpu-tesla-v100s"), req("c")],
                                [node("n1", 4, schedulable=False), node("s1", 1, "gpu-tesla-v100s")])
    assert plan["hosts"]["q"]["reason"] == "quota allows 1 GPU, it asks for 2"
    assert plan["hosts"]["s"]["node"] == "s1"
    assert not plan["hosts"]["c"]["fits"]  # n1 is cordoned
    assert "1 x (1 x gpu-tesla-v100 not free)" not in plan["summary"] and "over quota" in plan["summary"]


def test_without_nodes_only_the_quotas_are_planned_and_said():
    plan = _class_plan.allocate([req("a"), req("b", quota_free=0)], None, "no credentials of this run may read nodes")
    assert plan["hosts"]["a"]["fits"] and not plan["nodes_planned"]
    assert "node capacity not planned" in plan["hosts"]["a"]["reason"] and not plan["hosts"]["b"]["fits"]
    assert plan["summary"].endswith("(node capacity not planned: no credentials of this run may read nodes)")


# --- scale and change_model keep the running engine's other settings ---------------------------------

def _applied(engine, **over):
    """The live settings of the Deployment the role core builds from its defaults with ``over``."""
    from ansible_collections.haw_icc.llm.plugins.module_utils import _manifests

    e = _engines.get(engine)
    p = e.prefix
    cfg = dict((k[len(p):], v) for k, v in defaults(engine).items() if k.startswith(p) and k[len(p):] not in e.not_config)
    cfg.update(namespace="wstu002-default", storage_class="", **over)
    deployment = [o for o in _manifests.engine_objects(e, cfg) if o["kind"] == "Deployment"][0]
    return e.live(deployment)


def test_scale_keeps_what_the_running_engine_had_and_the_inventory_does_not_set():
    live = _applied("vllm", model=SMOLLM, max_model_len=2048, max_num_seqs=64, dtype="half", extra_args=["--seed", "7"],
                    gpu_type="gpu-tesla-v100s", nccl_fallback=True, gpu_memory_utilization=0.8)
    llm, _names = plan(base="live", request={"gpu_count": 3}, live=live, vllm_dtype="float16")
    assert llm["carried"] == {"extra_args": ["--seed", "7"], "gpu_memory_utilization": 0.8, "max_num_seqs": 64}
    assert llm["gpu_type"] == "gpu-tesla-v100s" and llm["nccl_fallback"] is True and llm["memory_fraction"] == 0.8
    cfg = _plan.role_config(inputs(vllm_dtype="float16"), _engines.get("vllm"), defaults("vllm"), llm)
    assert cfg["max_num_seqs"] == 64 and cfg["extra_args"] == ["--seed", "7"] and cfg["gpu_count"] == 3
    assert cfg["dtype"] == "float16"  # what the inventory sets wins over what ran
    args = _engines.get("vllm").args(cfg)
    assert args[args.index("--max-num-seqs") + 1] == "64" and "--seed" in args


def test_change_model_keeps_settings_but_the_served_name_follows_the_model():
    live = _applied("vllm", model=SMOLLM, served_model_name=SMOLLM, max_model_len=2048, max_num_seqs=8)
    llm, _names = plan(base="live", request={"model": "Qwen/Qwen2.5-0.5B-Instruct"}, live=live)
    assert llm["carried"] == {"max_num_seqs": 8}
    cfg = _plan.role_config(inputs(), _engines.get("vllm"), defaults("vllm"), llm)
    assert cfg["served_model_name"] == "Qwen/Qwen2.5-0.5B-Instruct" and cfg["max_num_seqs"] == 8


def test_deploy_carries_nothing_and_a_deployment_without_the_annotation_carries_nothing():
    live = _applied("tgi", model=SMOLLM, max_total_tokens=2048, max_input_tokens=1024, dtype="float16")
    assert plan("tgi", live=live)[0]["carried"] == {}  # deploy: the inventory is the whole truth
    assert plan("tgi", base="live", live=live)[0]["carried"] == {"dtype": "float16"}
    assert plan("tgi", base="live", live=dict(live, settings={}))[0]["carried"] == {}


def test_the_settings_annotation_reads_the_same_whatever_the_spelling():
    from ansible_collections.haw_icc.llm.plugins.module_utils import _manifests

    assert _manifests.settings_of({"max_num_seqs": "64", "enforce_eager": "true", "x": ["a", 1], "name": "vllm"}) == \
        _manifests.settings_of({"max_num_seqs": 64, "enforce_eager": True, "x": ["a", "1"], "name": "other"})
    assert _manifests.canonical("0.90") == 0.9 and _manifests.canonical("inf") == "inf"


def test_changes_list_any_setting_the_deployment_was_applied_with():
    """A deploy that changes vllm_max_num_seqs restarts the pod: the plan says so (it compared only
    the model, context, GPUs and shm before)."""
    live = _applied("vllm", model=SMOLLM, served_model_name=SMOLLM, max_model_len=2048, max_num_seqs=16)
    e = _engines.get("vllm")
    for values, want in (({"vllm_max_num_seqs": "16"}, []),  # the same, as a string
                         ({"vllm_max_num_seqs": 64}, [{"setting": "max_num_seqs", "from": 16, "to": 64}]),
                         ({"vllm_max_num_seqs": 16, "vllm_service_port": 8001}, [])):  # not the pod's
        inp = inputs(vllm_model=SMOLLM, vllm_max_model_len=2048, **values)
        llm, _names = _plan.resolve(inp, e, defaults("vllm"), "inventory", None, live)
        previous, _names = _plan.resolve(inp, e, defaults("vllm"), "live", {}, live)
        cfg = _plan.role_config(inp, e, defaults("vllm"), llm)
        change = _plan.changes(llm, previous, cfg, live["settings"])
        assert change["changes"] == want and change["restart"] is bool(want), values
    assert "max_num_seqs 16 -> 64; the engine pod restarts" in _plan.summary_line("ns", _plan.changes(
        llm, previous, dict(cfg, max_num_seqs=64), live["settings"]))


@pytest.mark.parametrize("workflow, raw, wanted, problems", [
    ("scale", {"gpu_count": "2", "shm_size": ""}, {"gpu_count": 2}, []),
    ("scale", {"gpu_count": 3, "shm_size": " 32Gi "}, {"gpu_count": 3, "shm_size": "32Gi"}, []),
    ("scale", {"gpu_count": "", "shm_size": ""}, {}, ["gpu_count=(unset): set gpu_count to the number of GPUs, 1 to 4"]),
    ("scale", {"gpu_count": "two"}, {}, ["gpu_count=two: not a whole number. Use the number of GPUs"]),
    ("scale", {"gpu_count": True}, {}, ["gpu_count=True: not a whole number."]),
    # quantization not given is none (or what the new model's config says), not the old model's
    ("change_model", {"model": "org/m", "quantization": "", "max_model_len": ""}, {"model": "org/m", "quantization": ""}, []),
    ("change_model", {"model": "org/m", "quantization": "gptq", "max_model_len": "4096"},
     {"model": "org/m", "quantization": "gptq", "max_model_len": 4096}, []),
    ("change_model", {"quantization": "", "max_model_len": "4k"}, {"quantization": ""},
     ["model=(unset): set model to a Hugging Face model id", "max_model_len=4k: not a whole number."]),
    ("deploy", {}, {}, []),
    ("deploy", {"gpu_count": 2}, {}, ["gpu_count: not a setting of deploy (it takes the inventory's variables)."]),
])
def test_the_workflows_e_variables_are_checked_as_written(workflow, raw, wanted, problems):
    got, found = _plan.request_of(workflow, raw)
    assert got == wanted and len(found) == len(problems), found
    for text, expected in zip(found, problems):
        assert text.startswith(expected), (text, expected)
