"""Bad input, across the modules, the roles and the playbooks: each is refused with a message that
names the variable as the user wrote it and says what to use instead, and nothing on the cluster is
created or changed (the resourceVersion of every object in every namespace and every cluster-scoped
object, read with the admin kubeconfig, before and after) and no file is written.

A working engine and Open WebUI, deployed once by playbooks/deploy.yml into TARGET (a namespace-only
class student), are the namespace the refused runs aim at: the last test shows they were not
touched and that the model still answers.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest

from sandboxlib import MODEL, REPO, changes, cluster_snapshot, http_json, run_playbook, settled_cluster_snapshot

TARGET = "wcls027-default"
PLAYBOOKS = REPO / "playbooks"

ROLE_PLAY = """
- name: A role with bad input
  hosts: %(host)s
  gather_facts: false
  module_defaults:
    group/kubernetes.core.k8s:
      kubeconfig: "{{ icc_kubeconfig }}"
    group/haw_icc.llm.icc:
      kubeconfig: "{{ icc_kubeconfig }}"
  tasks:
    - name: Include the role
      ansible.builtin.include_role:
        name: haw_icc.llm.%(role)s
      vars: %(vars)s
"""

MODULE_PLAY = """
- name: A module with bad input
  hosts: %(host)s
  gather_facts: false
  tasks:
    - name: Call the module
      haw_icc.llm.%(module)s: %(args)s
"""

KC = "{{ icc_kubeconfig }}"  # the target student's own kubeconfig (inventories/sandbox)
SHELL = "m; rm -rf /"


def case(case_id, how, args, *needles):
    """One bad input. ``how``: a playbook file name, ``role:<name>`` or ``module:<name>``. ``needles``:
    the variable as the user wrote it, then what the message must say to use instead. ``{tmp}`` in
    a value is the test's scratch directory."""
    return pytest.param(how, args, needles, id=case_id)


BAD = [
    # --- modules ------------------------------------------------------------------------------
    case("gpu_capacity-unknown-gpu_type", "module:gpu_capacity", {"kubeconfig": KC, "gpu_type": "gpu-a100"},
         "gpu_type", "gpu-tesla-v100, gpu-tesla-v100s"),
    case("gpu_capacity-count-word", "module:gpu_capacity", {"kubeconfig": KC, "count": "two"},
         "'count'", "convert to int"),
    case("gpu_capacity-count-negative", "module:gpu_capacity", {"kubeconfig": KC, "count": -1},
         "count=-1", "Use a number from 1 to 4"),
    case("gpu_capacity-namespace-shell", "module:gpu_capacity", {"kubeconfig": KC, "namespace": TARGET + ";id"},
         "namespace=", "lower-case letters, digits and '-'"),
    case("llm_health-ftp-url", "module:llm_health", {"base_url": "ftp://127.0.0.1:8000/v1"},
         "base_url", "Use e.g. http://127.0.0.1:8000"),
    case("llm_health-negative-timeout", "module:llm_health", {"kubeconfig": KC, "service": "vllm", "timeout": -5},
         "timeout=-5", "a number >= 1"),
    case("llm_health-dict-model", "module:llm_health", {"kubeconfig": KC, "service": "vllm", "model": {"id": MODEL}},
         "set model to", "one of the listed names"),
    case("gpu_monitor_sample-zero-interval", "module:gpu_monitor_sample",
         {"kubeconfig": KC, "interval": 0, "dest": "{tmp}/monitor"}, "interval=0", "for example 5"),
    case("gpu_monitor_sample-unknown-format", "module:gpu_monitor_sample",
         {"kubeconfig": KC, "count": 1, "formats": ["pdf"], "dest": "{tmp}/monitor"}, "formats", "csv, summary, html, png"),
    case("icc_login-missing-src", "module:icc_login", {"src": "{tmp}/missing.txt", "dest": "{tmp}/kube/config"},
         "src=", "path of the downloaded config.txt"),
    case("icc_login-garbage-src", "module:icc_login", {"src": "{tmp}/garbage.txt", "dest": "{tmp}/kube/config"},
         "src=", "Download a fresh kubeconfig"),
    case("icc_login-html-src", "module:icc_login", {"src": "{tmp}/login.html", "dest": "{tmp}/kube/config"},
         "src=", "download"),
    # --- roles (include_role) -----------------------------------------------------------------
    case("vllm-gpu_count-word", "role:vllm", {"vllm_model": MODEL, "vllm_gpu_count": "two"},
         "'vllm_gpu_count'", "convert to int"),
    case("vllm-gpu_count-fraction", "role:vllm", {"vllm_model": MODEL, "vllm_gpu_count": 1.5},
         "'vllm_gpu_count'", "convert to int"),
    case("vllm-model-dict", "role:vllm", {"vllm_model": {"id": MODEL}},
         "vllm_model=", "an id such as"),
    case("vllm-extra_args-not-a-list", "role:vllm", {"vllm_model": MODEL, "vllm_extra_args": "--seed 1"},
         "vllm_extra_args=", "a list such as"),
    case("vllm-extra_args-short-tp", "role:vllm", {"vllm_model": MODEL, "vllm_extra_args": ["-tp", "2"]},
         "vllm_extra_args=", "the role variable vllm_gpu_count"),
    case("vllm-namespace-uppercase", "role:vllm", {"vllm_model": MODEL, "vllm_namespace": "Bad_NS"},
         "vllm_namespace=", "lower-case letters"),
    case("tgi-name-dict", "role:tgi", {"tgi_model": MODEL, "tgi_name": {"a": 1}},
         "tgi_name=", "lower-case letters"),
    case("tgi-dtype-bf16", "role:tgi", {"tgi_model": MODEL, "tgi_dtype": "bfloat16"},
         "tgi_dtype=", "float16"),
    case("tgi-image-untagged", "role:tgi", {"tgi_model": MODEL, "tgi_image": "ghcr.io/huggingface/text-generation-inference"},
         "tgi_image=", "a pinned version tag"),
    case("tgi-extra_args-num-shard", "role:tgi", {"tgi_model": MODEL, "tgi_extra_args": ["--num-shard=2"]},
         "tgi_extra_args=", "the role variable tgi_gpu_count"),
    case("tgi-extra_args-unknown-flag", "role:tgi", {"tgi_model": MODEL, "tgi_extra_args": ["--max-model-len", "4096"]},
         "tgi_extra_args='--max-model-len': not a flag of TGI 2.4.1's launcher", "see its --help"),
    case("llamacpp-image-cuda13", "role:llamacpp", {"llamacpp_image": "ghcr.io/ggml-org/llama.cpp:server-cuda13-b11312"},
         "llamacpp_image=", "a CUDA 12 image such as"),
    case("llamacpp-model-no-gguf-type", "role:llamacpp", {"llamacpp_model": "Qwen/Qwen2.5-7B-Instruct"},
         "llamacpp_model=", "'user/model:Q4_K_M'"),
    case("llamacpp-tensor_split-parts", "role:llamacpp", {"llamacpp_gpu_count": 2, "llamacpp_tensor_split": "3,1,1"},
         "llamacpp_tensor_split=", "one proportion per GPU"),
    case("webui-memory-word", "role:webui", {"webui_memory": "lots"}, "webui_memory=", "'16Gi'"),
    case("webui-name-dict", "role:webui", {"webui_name": {"a": 1}}, "webui_name=", "lower-case letters"),
    case("gpu_monitor-interval-zero", "role:gpu_monitor", {"gpu_monitor_interval": 0, "gpu_monitor_dest": "{tmp}/monitor"},
         "gpu_monitor_interval=0", "more than 0"),
    case("gpu_monitor-interval-word", "role:gpu_monitor", {"gpu_monitor_interval": "fast", "gpu_monitor_dest": "{tmp}/monitor"},
         "'gpu_monitor_interval'", "convert to float"),
    case("gpu_monitor-duration-negative", "role:gpu_monitor", {"gpu_monitor_duration": -5, "gpu_monitor_dest": "{tmp}/monitor"},
         "gpu_monitor_duration=-5", "0 or more"),
    case("gpu_monitor-unknown-engine", "role:gpu_monitor", {"gpu_monitor_engine": "ollama", "gpu_monitor_dest": "{tmp}/monitor"},
         "gpu_monitor_engine", "any, vllm, tgi"),
    # --- deploy.yml ---------------------------------------------------------------------------
    case("deploy-namespace-uppercase", "deploy.yml", {"icc_namespace": "Bad_NS"}, "icc_namespace=", "w<id>-default"),
    case("deploy-memory-GB", "deploy.yml", {"vllm_memory": "16GB"}, "vllm_memory=", "'16Gi'"),
    case("deploy-shm-word", "deploy.yml", {"vllm_shm_size": "lots"}, "vllm_shm_size=", "'8Gi'"),
    case("deploy-cpu-negative", "deploy.yml", {"vllm_cpu": "-1"}, "vllm_cpu=", "'4'"),
    case("deploy-unknown-engine", "deploy.yml", {"icc_engine": "ollama"}, "icc_engine=ollama", "vllm or tgi"),
    case("deploy-gpu_count-0", "deploy.yml", {"icc_gpu_count": 0}, "icc_gpu_count", "1 to 4"),
    case("deploy-gpu_count-5", "deploy.yml", {"icc_gpu_count": 5}, "icc_gpu_count", "1 to 4"),
    case("deploy-gpu_count-word", "deploy.yml", {"icc_gpu_count": "two"}, "icc_gpu_count='two'", "1 to 4"),
    case("deploy-gpu_count-fraction", "deploy.yml", {"icc_gpu_count": 1.5}, "icc_gpu_count=1.5", "1 to 4"),
    case("deploy-unknown-gpu_type", "deploy.yml", {"icc_gpu_type": "gpu-a100"}, "icc_gpu_type", "gpu-tesla-v100 or gpu-tesla-v100s"),
    case("deploy-bf16-on-v100", "deploy.yml", {"vllm_dtype": "bfloat16"}, "vllm_dtype=", "half (float16) or auto"),
    case("deploy-awq-with-vllm", "deploy.yml", {"icc_quantization": "awq"}, "icc_quantization", "quantization 'gptq'"),
    case("deploy-tgi-sharding", "deploy.yml", {"icc_engine": "tgi", "icc_gpu_count": 2}, "icc_gpu_count", "the vllm role"),
    # SmolLM2-135M (the sandbox model) has 9 attention heads and 3 KV heads: vLLM splits them over 1 or 3 GPUs.
    case("deploy-tp-does-not-divide-the-heads", "deploy.yml", {"icc_gpu_count": 2}, "icc_gpu_count -> vllm_gpu_count=2",
         "Use 1 or 3 (the GPU counts this model allows on one node)"),
    case("role-vllm-tp-does-not-divide-the-heads", "role:vllm", {"vllm_model": MODEL, "vllm_gpu_count": 4},
         "vllm_gpu_count=4", "Use 1 or 3"),
    case("deploy-tgi-input-not-below-total", "deploy.yml",
         {"icc_engine": "tgi", "icc_max_input_length": 4096, "icc_max_total_tokens": 4096},
         "icc_max_input_length", "for example 2048"),
    case("deploy-context-too-long-for-the-gpu", "deploy.yml", {"icc_max_total_tokens": 1000000},
         "icc_max_total_tokens", "a shorter context (icc_max_total_tokens"),
    case("deploy-memory-utilization-1.5", "deploy.yml", {"vllm_gpu_memory_utilization": 1.5},
         "vllm_gpu_memory_utilization=1.5", "a value such as 0.9"),
    case("deploy-model-shell-semicolon", "deploy.yml", {"icc_model": SHELL}, "icc_model", "an id such as"),
    case("deploy-model-shell-substitution", "deploy.yml", {"icc_model": "$(id)"}, "icc_model", "an id such as"),
    case("deploy-model-backticks", "deploy.yml", {"icc_model": "org/`id`"}, "icc_model", "an id such as"),
    case("deploy-model-yaml-newline", "deploy.yml", {"icc_model": "org/model\nimage: evil:1"}, "icc_model", "an id such as"),
    case("deploy-extra_args-yaml-newline", "deploy.yml", {"vllm_extra_args": ["--seed", "1\n- --tensor-parallel-size=4"]},
         "vllm_extra_args=", "plain text arguments"),
    case("deploy-extra_args-managed-flag", "deploy.yml", {"vllm_extra_args": ["--tensor-parallel-size", "2"]},
         "vllm_extra_args=", "the role variable vllm_gpu_count"),
    # vLLM 0.8.5's own parser would exit on it in the pod ("unrecognized arguments"), as the original scripts did.
    case("deploy-extra_args-unknown-vllm-flag", "deploy.yml", {"vllm_extra_args": ["--max-batch-size", "32"]},
         "vllm_extra_args='--max-batch-size': not a flag of vLLM 0.8.5", "a flag of vLLM 0.8.5"),
    case("deploy-extra_args-bad-choice", "deploy.yml", {"vllm_extra_args": ["--kv-cache-dtype", "fp9"]},
         "vllm_extra_args='--kv-cache-dtype fp9': not a value vLLM 0.8.5 accepts", "one of auto, fp8"),
    case("deploy-vllm-memory-below-pinned-swap", "deploy.yml", {"vllm_memory": "6Gi"},
         "vllm_memory='6Gi': vLLM pins 4 GiB of host memory for swap", "at least '8Gi'"),
    case("deploy-image-latest", "deploy.yml", {"vllm_image": "vllm/vllm-openai:latest"}, "vllm_image=", "'vllm/vllm-openai:v0.8.5'"),
    case("deploy-webui-image-main", "deploy.yml", {"webui_image": "ghcr.io/open-webui/open-webui:main", "icc_max_total_tokens": 2048},
         "webui_image=", "a pinned version tag"),
    # --- the other playbooks ------------------------------------------------------------------
    case("scale-gpu_count-word", "scale.yml", {"gpu_count": "two"}, "gpu_count=two", "1 to 4"),
    case("scale-gpu_count-5", "scale.yml", {"gpu_count": 5}, "gpu_count", "1 to 4"),
    case("scale-shm-word", "scale.yml", {"gpu_count": 3, "shm_size": "lots"}, "shm_size -> vllm_shm_size='lots'", "a quantity such as"),
    case("scale-tp-does-not-divide-the-heads", "scale.yml", {"gpu_count": 4}, "gpu_count=4", "Use 1 or 3"),
    case("change_model-shell", "change_model.yml", {"model": "$(id)"}, "model='$(id)'", "an id such as"),
    case("change_model-max_model_len-word", "change_model.yml", {"model": MODEL, "max_model_len": "big"},
         "max_model_len=big", "a number such as 4096"),
    case("cleanup-confirm-garbage", "cleanup.yml", {"confirm": "maybe"}, "confirm=maybe", "true or false"),
    case("cleanup-purge-garbage", "cleanup.yml", {"confirm": True, "purge": "sure"}, "purge=sure", "true or false"),
    case("access-port-70000", "access.yml", {"access_api_port": 70000, "access_state_dir": "{tmp}/access"},
         "access_api_port=70000", "0 to 65535"),
    case("access-unknown-state", "access.yml", {"state": "gone", "access_state_dir": "{tmp}/access"}, "state=gone", "present or absent"),
    case("logs-negative-lines", "logs.yml", {"logs_lines": -5}, "logs_lines=-5", "at least 1"),
    case("logs-unknown-component", "logs.yml", {"component": "database"}, "component=database", "engine or webui"),
    case("status-namespace-uppercase", "status.yml", {"icc_namespace": "Bad_NS"}, "icc_namespace", "w<id>-default"),
    case("test_gpu-log-lines-word", "test_gpu.yml", {"test_gpu_log_lines": "many"}, "test_gpu_log_lines=many", "at least 1 (e.g. 500)"),
    case("monitor-negative-interval", "monitor.yml", {"gpu_monitor_interval": -1, "gpu_monitor_dest": "{tmp}/monitor"},
         "gpu_monitor_interval=-1", "more than 0"),
    case("login-missing-src", "login.yml", {"icc_login_src": "{tmp}/missing.txt", "dest": "{tmp}/kube/config"},
         "icc_login_src", "path of the downloaded config.txt"),
    case("login-user_id-shell", "login.yml", {"icc_login_src": "{tmp}/config.txt", "dest": "{tmp}/kube/config", "icc_user_id": "infw1; id"},
         "icc_user_id", "infw"),
]


def _fill(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [_fill(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, tmp) for k, v in value.items()}
    return value


def files(root):
    """Every file and directory under ``root`` with its bytes and modification time."""
    out = {}
    for path in sorted(pathlib.Path(root).rglob("*")):
        stat = path.stat()
        out[str(path.relative_to(root))] = (path.read_bytes() if path.is_file() else None, stat.st_mtime_ns)
    return out


def run_case(how, args):
    if how.startswith("role:"):
        play = ROLE_PLAY % {"host": TARGET, "role": how[5:], "vars": json.dumps(args)}
        return run_playbook(play, limit=TARGET)
    if how.startswith("module:"):
        play = MODULE_PLAY % {"host": TARGET, "module": how[7:], "args": json.dumps(args)}
        return run_playbook(play, limit=TARGET)
    # login.yml runs on localhost only; every other playbook on the target namespace.
    return run_playbook(PLAYBOOKS / how, limit=None if how == "login.yml" else TARGET, extra_vars=args)


@pytest.fixture(scope="module")
def working(sandbox):
    """A working engine and Open WebUI in TARGET, deployed by the student with deploy.yml."""
    run = run_playbook(PLAYBOOKS / "deploy.yml", limit=TARGET)
    assert run.rc == 0, run.failure_messages() or run.stdout[-3000:]
    yield settled_cluster_snapshot(sandbox)
    cleanup = run_playbook(PLAYBOOKS / "cleanup.yml", limit=TARGET, extra_vars={"confirm": True, "purge": True})
    assert cleanup.rc == 0, cleanup.failure_messages()


@pytest.fixture()
def scratch(sandbox, tmp_path):
    """Inputs for the login cases: a working kubeconfig, garbage, the portal's HTML page, and an
    existing ~/.kube/config that a refused login must leave alone."""
    shutil.copy(sandbox.kubeconfig(TARGET), tmp_path / "config.txt")
    (tmp_path / "garbage.txt").write_text("clusters: [unclosed\n  - {\n")
    (tmp_path / "login.html").write_text("<!DOCTYPE html><html><body>ICC login</body></html>\n")
    (tmp_path / "kube").mkdir()
    shutil.copy(sandbox.kubeconfig(TARGET), tmp_path / "kube" / "config")
    os.chmod(tmp_path / "kube" / "config", 0o600)
    return tmp_path


@pytest.mark.parametrize("how,args,needles", BAD)
def test_bad_input_is_refused_and_changes_nothing(sandbox, working, scratch, how, args, needles):
    before, before_files = cluster_snapshot(sandbox), files(scratch)
    run = run_case(how, _fill(args, scratch))
    assert run.rc != 0, run.stdout[-3000:]
    msg = " ".join(run.failure_messages())
    for needle in needles:
        assert needle in msg, "%r not in the message: %s" % (needle, msg or run.stdout[-3000:])
    assert "Traceback" not in msg and "Exception '" not in msg, msg
    assert run.changed() == 0
    assert changes(before, cluster_snapshot(sandbox)) == {}
    assert files(scratch) == before_files


def test_the_working_model_was_not_touched(sandbox, working):
    """After every refusal: the same objects with the same resourceVersions as right after the
    deploy, and the model answers through its Service."""
    assert changes(working, cluster_snapshot(sandbox)) == {}
    proc, port = sandbox.port_forward(TARGET, "svc/vllm", 8000, kubeconfig=sandbox.kubeconfig(TARGET))
    try:
        answer = http_json("http://127.0.0.1:%d/v1/chat/completions" % port, {
            "model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "What is the capital of Germany?"}]})
    finally:
        proc.kill()
    assert answer["model"] and answer["choices"][0]["message"]["content"].strip()
