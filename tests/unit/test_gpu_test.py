"""test_gpu.yml's checks (plugins/module_utils/_gpu_test.py)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_test

QUERY = "index,name,uuid,temperature.gpu,utilization.gpu,memory.used,memory.total,power.draw"
OUTPUT = [
    "### smi", "+----+", "| NVIDIA-SMI 550.54 |", "### smi_rc 0",
    "### list", "GPU 0: Tesla V100-PCIE-16GB (UUID: GPU-1)", "GPU 1: Tesla V100-PCIE-16GB (UUID: GPU-2)", "junk",
    "### query", "0, Tesla V100-PCIE-16GB, GPU-1, 40, 3, 500, 16384, 25.1",
    "1, Tesla V100-PCIE-16GB, GPU-2, 41, 0, 0, 16384, [N/A]", "### query_rc 0",
    "### env", "CUDA_VISIBLE_DEVICES=0,1", "NCCL_P2P_DISABLE=0",
    "### shm", "Filesystem 1024-blocks Used Available Capacity Mounted on", "shm 16777216 0 16777216 0% /dev/shm",
    "### end",
]


def pod(args, gpus=2, request=None, shm="16Gi"):
    res = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if request is not None:
        res["requests"] = {"nvidia.com/gpu": str(request)}
    return {"metadata": {"name": "vllm-1"},
            "spec": {"nodeName": "gpu-1", "containers": [{"name": "vllm", "args": args, "resources": res}],
                     "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]}}


HEALTH = {"model": "org/m", "answer": " Berlin. ", "elapsed": 1.5, "checks": [{"name": "chat", "latency_s": 0.4}],
          "stream": {"ttft_s": 0.1, "tokens_per_s": 30.0}}


def test_spec_reads_the_command_line_once():
    spec = _gpu_test.pod_spec(pod(["--model", "org/m", "--served-model-name", "m", "--tensor-parallel-size", "2"]))
    assert spec == {"container": "vllm", "gpu_request": 2, "gpu_limit": 2, "parallel": 2,
                    "parallel_arg": "tensor-parallel-size / num-shard", "model": "m", "shm_limit": "16Gi", "node": "gpu-1",
                    "api_key_secret": "", "api_key_secret_key": "api-key"}
    tgi = _gpu_test.pod_spec(pod(["--model-id", "org/t", "--num-shard=1"], gpus=1, request=1))
    assert tgi["parallel"] == 1 and tgi["model"] == "org/t" and tgi["parallel_arg"].startswith("tensor")
    none = _gpu_test.pod_spec(pod(["--model", "org/m"], gpus=1))
    assert none["parallel"] == 1 and none["parallel_arg"] == "none (1)"
    keyed = pod(["--hf-repo", "org/m-GGUF:Q4_K_M", "--alias", "m", "--split-mode", "layer"], gpus=2)
    keyed["spec"]["containers"][0]["env"] = [{"name": "LLAMA_CACHE", "value": "/models"}, {
        "name": "LLAMA_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llamacpp-api-key", "key": "api-key"}}}]
    llama = _gpu_test.pod_spec(keyed)
    assert (llama["api_key_secret"], llama["api_key_secret_key"]) == ("llamacpp-api-key", "api-key")
    assert (llama["parallel"], llama["parallel_arg"], llama["model"]) == (2, "split-mode layer (every GPU of the pod)", "m")
    one = _gpu_test.pod_spec(pod(["--hf-repo", "org/m-GGUF:Q4_K_M", "--split-mode", "none"], gpus=1))
    assert one["parallel"] == 1 and one["parallel_arg"] == "none (1)" and one["model"] == "org/m-GGUF:Q4_K_M"


def test_output_sections_gpus_and_shm():
    out = _gpu_test.parse_output(OUTPUT, QUERY)
    assert out["smi_ok"] and out["table"] == ["+----+", "| NVIDIA-SMI 550.54 |"]
    assert out["list"] == ["GPU 0: Tesla V100-PCIE-16GB (UUID: GPU-1)", "GPU 1: Tesla V100-PCIE-16GB (UUID: GPU-2)"]
    assert [g["name"] for g in out["gpus"]] == ["Tesla V100-PCIE-16GB"] * 2 and out["gpus"][1]["power.draw"] == "[N/A]"
    assert out["env"] == ["CUDA_VISIBLE_DEVICES=0,1", "NCCL_P2P_DISABLE=0"] and out["shm_mib"] == 16384
    failed = _gpu_test.parse_output(["### smi", "nvidia-smi: not found", "### smi_rc 127"], QUERY)
    assert not failed["smi_ok"] and failed["gpus"] == [] and failed["shm_mib"] == 0


def test_checks_pass_and_the_lines_show_them():
    spec = _gpu_test.pod_spec(pod(["--model", "org/m", "--tensor-parallel-size", "2"]))
    out = _gpu_test.parse_output(OUTPUT, QUERY)
    checks = _gpu_test.checks(spec, out, HEALTH, "vllm", {"log_lines": ["INFO ok"]}, 1024)
    assert all(c["ok"] for c in checks), checks
    by = {c["name"]: c["detail"] for c in checks}
    assert by["nvidia-smi"] == "2 GPU(s): Tesla V100-PCIE-16GB"
    assert by["API answers"] == 'model org/m answered "Berlin." in 0.4 s, first token after 0.1 s, 30.0 tokens/s'
    assert by["/dev/shm"] == "16384 MiB in the pod (sizeLimit 16Gi), want >= 2048 MiB"
    text = _gpu_test.lines("ns", "engine", "vllm-1", spec, out, checks)
    assert text[0] == "ns: engine pod vllm-1 on node gpu-1, model org/m" and "[OK] Engine log: 1 lines, 0 OOM/CUDA/NCCL error line(s)" in text
    assert [c["name"] for c in _gpu_test.prefixed(checks, "throwaway t: ")][0] == "throwaway t: nvidia-smi"


def test_checks_name_each_mismatch():
    spec = _gpu_test.pod_spec(pod(["--model", "org/m", "--tensor-parallel-size", "2"], gpus=1, shm="1Gi"))
    out = _gpu_test.parse_output(OUTPUT, QUERY)
    log = {"log_lines": ["RuntimeError: NCCL error in: x", "NCCL WARN only a warning", "killed a thread"]}
    checks = {c["name"]: c for c in _gpu_test.checks(spec, out, {"skipped": True}, "", log, 1024)}
    assert checks["GPUs seen = GPUs requested"]["detail"] == "pod sees 2, requests 1, limit 1"
    assert checks["Tensor parallel = GPUs"]["detail"] == "tensor-parallel-size / num-shard = 2, GPUs requested 1"
    assert not checks["API answers"]["ok"] and checks["API answers"]["detail"] == "no engine Service"
    assert checks["Engine log"]["detail"] == "3 lines, 1 OOM/CUDA/NCCL error line(s), last: RuntimeError: NCCL error in: x"
    unreadable = _gpu_test.checks(spec, out, {"msg": "refused"}, "vllm", {"msg": "container not found"}, 1024)
    assert unreadable[-1] == {"name": "Engine log", "ok": False, "detail": "log not readable: container not found"}
    assert unreadable[-2]["detail"] == "refused"


def _pod(name, phase="Running", created="2026-12-01T10:00:00Z", deleting=False):
    meta = {"name": name, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T11:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


def test_engine_target_is_the_newest_running_pod_not_being_deleted_and_the_first_service():
    pods = [_pod("old", created="2026-12-01T09:00:00Z"), _pod("new", created="2026-12-01T10:00:00Z"),
            _pod("leaving", created="2026-12-01T11:00:00Z", deleting=True),
            _pod("pending", phase="Pending", created="2026-12-01T12:00:00Z")]
    services = [{"metadata": {"name": "vllm"}}, {"metadata": {"name": "tgi"}}]
    pod, service = _gpu_test.engine_target(pods, services)
    assert pod["metadata"]["name"] == "new" and service == "tgi"
    assert _gpu_test.engine_target([_pod("p", phase="Pending")], []) == ({}, "")
