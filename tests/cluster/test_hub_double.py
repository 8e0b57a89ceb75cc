"""The sandbox's Hugging Face Hub double (hub_double.py), read by the collection's real reader
(plugins/plugin_utils/_hub.py with huggingface_hub 2.4.0): every answer the preflight acts on, and the
context limit of every model of the store as vLLM 0.8.5 itself derives it."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _model_facts
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _hub
from sandboxlib import REPO, free_port, http_json, vllm_venv, wait_until

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("hub") / "requests.log"
    proc = subprocess.Popen([sys.executable, str(HERE / "hub_double.py"), "--port", str(port), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = "http://127.0.0.1:%d" % port

    def up():
        try:
            return http_json(url + "/_double/requests", timeout=2) is not None
        except OSError:
            return False

    wait_until(up, timeout=30, what="the Hub double")
    yield url, log
    proc.terminate()
    proc.wait(timeout=10)


def test_a_public_model_gives_its_config_and_parameters(hub, tmp_path, monkeypatch):
    url, _log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # hf_hub_download's cache
    facts = _hub.read("HuggingFaceTB/SmolLM2-135M-Instruct", "", url)
    assert facts["status"] == "ok" and facts["endpoint"] == url
    assert (facts["heads"], facts["kv_heads"], facts["layers"], facts["max_position"]) == (9, 3, 30, 8192)
    assert facts["params_by_dtype"] == {"BF16": 134515008}
    # The file huggingface_hub downloaded is the store's config.json, byte for byte.
    cached = list(tmp_path.rglob("config.json"))
    assert cached and cached[0].read_bytes() == (HERE / "models" / "HuggingFaceTB" / "SmolLM2-135M-Instruct"
                                                 / "config.json").read_bytes()


def test_safetensors_metadata_when_the_model_info_has_no_counts(hub, tmp_path, monkeypatch):
    url, log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    facts = _hub.read("HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ", "", url)
    assert facts["params_by_dtype"] == {"I32": 13524480, "F16": 29176128}
    assert (facts["quant_method"], facts["quant_bits"]) == ("gptq", 4)
    assert "GET /HuggingFaceTB/SmolLM2-135M-Instruct-GPTQ/resolve/" in log.read_text()


def test_not_found_gated_and_token_answers(hub, tmp_path, monkeypatch):
    url, _log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    gated = "meta-llama/Llama-3.2-1B-Instruct"
    assert _hub.read("HuggingFaceTB/SmolLM2-135M-Instrcut", "", url)["status"] == "not_found"
    assert _hub.read(gated, "", url)["status"] == "no_token"
    refused = _hub.read(gated, "hf_sandbox_no_access", url)
    assert (refused["status"], refused["gated"]) == ("no_access", "manual")
    assert _hub.read(gated, "not-a-token", url)["status"] == "bad_token"
    ok = _hub.read(gated, "hf_sandbox_llama_access", url)
    assert ok["status"] == "ok" and ok["gated"] == "manual" and ok["max_position"] == 131072
    # Accepting the license (the double's grant) gives a token access.
    token = "hf_granted_in_this_test"
    assert _hub.read(gated, token, url)["status"] == "no_access"
    http_json(url + "/_double/grant", {"repo": gated, "token": token})
    assert _hub.read(gated, token, url)["status"] == "ok"


def test_tokens_never_reach_the_doubles_log(hub, tmp_path, monkeypatch):
    url, log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    _hub.read("meta-llama/Llama-3.2-1B-Instruct", "hf_sandbox_llama_access", url)
    assert "hf_sandbox_llama_access" not in log.read_text()


def test_unreachable_and_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    down = "http://127.0.0.1:%d" % free_port()
    facts = _hub.read("HuggingFaceTB/SmolLM2-135M-Instruct", "", down)
    assert facts["status"] == "unreachable" and facts["detail"].startswith("ConnectError")


def test_the_gguf_summary_of_a_gguf_repository(hub, tmp_path, monkeypatch):
    url, _log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    facts = _hub.read("bartowski/SmolLM2-135M-Instruct-GGUF", "", url)
    assert facts["status"] == "ok" and facts["params_b"] == 0.1345 and facts["max_position"] == 8192


def test_every_model_the_tests_deploy_is_on_the_double():
    """A model id a test deploys through the plan must be on the double, or its preflight refuses it
    as a typo; the test of that refusal (test_hub_preflight) spells it wrong on purpose."""
    index = json.loads((HERE / "hub" / "models.json").read_text())
    served = [line.strip() for line in (HERE / "models.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for name in served:
        assert name in index, name
    for path in (REPO / "tests" / "integration").glob("test_*.py"):
        for model in re.findall(r'"icc_model": "([^"]+)"', path.read_text()):
            if "Instrcut" in model or not _engine.is_model_id(_model_facts.repository(model)):
                continue  # the typo test, and ids the engine rules refuse before the Hub is asked
            assert _model_facts.repository(model) in index, (path.name, model)
    for path in sorted((HERE / "models").glob("*/*/config.json")):
        assert "%s/%s" % (path.parent.parent.name, path.parent.name) in index, path


VLLM_MAX_LEN = """
import json, sys
from transformers import AutoConfig
from vllm.config import _get_and_verify_max_len
out = {}
for repo, cfg in json.load(sys.stdin).items():
    hf = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    out[repo] = _get_and_verify_max_len(hf, None, False, getattr(hf, "sliding_window", None))
print(json.dumps(out))
"""


def test_the_context_limit_is_the_one_vllm_derives():
    """_model_facts.max_position against vLLM 0.8.5's own _get_and_verify_max_len, on every config the
    double serves (rope scaling of Llama 3.2, sliding windows of Qwen2.5, plain Llama and Mistral)."""
    configs = {}
    for path in sorted((HERE / "models").glob("*/*/config.json")):
        configs["%s/%s" % (path.parent.parent.name, path.parent.name)] = json.loads(path.read_text())
    proc = subprocess.run([str(vllm_venv() / "bin" / "python"), "-c", VLLM_MAX_LEN], input=json.dumps(configs),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    vllm = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = dict((repo, _model_facts.max_position(cfg)) for repo, cfg in configs.items())
    assert ours == vllm
    assert vllm["meta-llama/Llama-3.2-1B-Instruct"] == 131072 and vllm["TinyLlama/TinyLlama-1.1B-Chat-v1.0"] == 2048


def test_each_repository_is_read_once_per_run(hub, tmp_path, monkeypatch):
    from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _plan

    url, _log = hub
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(_hub, "CACHE_DIR", str(tmp_path / "cache"))
    inputs = _plan.Inputs({"icc_hf_endpoint": url, "icc_hf_token": "hf_sandbox_llama_access"}.get, "wstu002-default")
    key = "model_info meta-llama/Llama-3.2-1B-Instruct"

    def reads():
        return http_json(url + "/_double/requests").get(key, 0)

    before = reads()
    first = _hub.model_facts(inputs, _engines.get("vllm"), "meta-llama/Llama-3.2-1B-Instruct")
    again = _hub.model_facts(inputs, _engines.get("vllm"), "meta-llama/Llama-3.2-1B-Instruct")
    assert first == again and first["status"] == "ok" and reads() - before == 1
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert "hf_sandbox_llama_access" not in files[0].read_text()
    # Another run (another ansible-playbook process) reads again.
    monkeypatch.setattr(_hub, "_run_id", lambda: "another-run")
    _hub.model_facts(inputs, _engines.get("vllm"), "meta-llama/Llama-3.2-1B-Instruct")
    assert reads() - before == 2
    # An id the engine rules refuse is not sent to the Hub.
    assert _hub.model_facts(inputs, _engines.get("vllm"), "$(id)")["status"] == "invalid"
