"""What a real node would do with the pods the collection renders: the environment a kubelet gives
them (tests/cluster/kubelet_env.py) and vLLM 0.8.5's own start-up checks on the engine pod's argv and
that environment (tests/cluster/vllm_startup_check.py, in the sandbox's vLLM venv).

kwok runs no container, so without this nothing would notice that a Service named ``vllm`` injects
``VLLM_PORT=tcp://...`` into every pod of the namespace, which vLLM reads as a port number and dies on
(vLLM issue 15613). The pods set ``enableServiceLinks: false``; the negative control below shows the
same pod with service links on failing on vLLM's own error.
"""

from __future__ import annotations

import copy
import subprocess

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine

from sandboxlib import (MODEL, MODEL_TP, REPO, kubelet_environment, live_pods, remove_collection, run_playbook,
                        vllm_startup_check, vllm_venv)

NS = "wcls012-default"


def test_the_vllm_flag_table_is_what_vllm_0_8_5s_own_parser_says():
    """plugins/module_utils/_flags_vllm.py, regenerated from the real vLLM 0.8.5, is unchanged."""
    proc = subprocess.run([str(vllm_venv() / "bin" / "python"), str(REPO / "hack" / "gen_vllm_flags.py"), "--print"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = (REPO / "plugins" / "module_utils" / "_flags_vllm.py").read_text()
    assert proc.stdout == committed, "the committed flag table differs from vLLM 0.8.5's parser; regenerate it " \
        "with hack/gen_vllm_flags.py"


def test_deployed_pods_start_as_a_kubelet_and_vllm_0_8_5_would_start_them(sandbox):
    remove_collection(sandbox, NS)
    try:
        run = run_playbook("playbooks/deploy.yml", limit=NS)
        assert run.rc == 0, run.failure_messages() or run.stdout[-4000:]
        [engine] = live_pods(sandbox, NS)
        [webui] = live_pods(sandbox, NS, "app.kubernetes.io/component=webui")
        for pod in (engine, webui):
            assert pod["spec"]["enableServiceLinks"] is False, pod["metadata"]["name"]
            env = kubelet_environment(sandbox, pod)
            links = sorted(k for k in env if k.endswith("_SERVICE_HOST"))
            assert links == ["KUBERNETES_SERVICE_HOST"], (pod["metadata"]["name"], links)

        env = kubelet_environment(sandbox, engine)
        assert env["VLLM_USE_V1"] == "0" and "VLLM_PORT" not in env
        verdict = vllm_startup_check(engine["spec"]["containers"][0]["args"], env)
        assert verdict["ok"], verdict
        assert verdict["checks"][0].startswith("every vllm.envs variable evaluated")
        assert "model config of %s (max_model_len 4096, dtype torch.float16)" % MODEL in verdict["checks"], verdict

        # Negative control: the same pod with service links on (what the pods had before) gets the
        # engine Service's link variables, and vLLM's own code refuses to start.
        linked = copy.deepcopy(engine)
        linked["spec"]["enableServiceLinks"] = True
        env = kubelet_environment(sandbox, linked)
        assert env["VLLM_PORT"].startswith("tcp://") and env["VLLM_PORT"].endswith(":8000"), env
        verdict = vllm_startup_check(engine["spec"]["containers"][0]["args"], env)
        assert not verdict["ok"] and verdict["stage"] == "vllm.envs", verdict
        assert verdict["error"] == "ValueError: invalid literal for int() with base 10: '%s'" % env["VLLM_PORT"]
    finally:
        remove_collection(sandbox, NS)


def test_vllm_0_8_5_refuses_what_the_preflight_refuses():
    """The flags the preflight refuses (tests/unit/test_startup_rules.py) are the ones vLLM's own parser
    stops on: checked with the real program, on the argv the role renders plus the bad flag."""
    def argv(tp="1"):
        return ["--model", MODEL, "--served-model-name", MODEL, "--tensor-parallel-size", tp, "--dtype", "half",
                "--host", "0.0.0.0", "--port", "8000", "--max-model-len", "4096", "--swap-space", "4", "--enforce-eager"]
    base = argv()
    verdict = vllm_startup_check(base + ["--max-batch-size", "32"], {"VLLM_USE_V1": "0"})
    assert not verdict["ok"] and verdict["stage"] == "argument parser", verdict
    assert verdict["error"] == "api_server.py: error: unrecognized arguments: --max-batch-size 32", verdict
    verdict = vllm_startup_check(base + ["--kv-cache-dtype", "fp9"], {"VLLM_USE_V1": "0"})
    assert not verdict["ok"] and "invalid choice: 'fp9'" in verdict["error"], verdict
    # 9 attention heads (SmolLM2-135M) do not divide by 2: vLLM's own message.
    verdict = vllm_startup_check(argv(tp="2"), {"VLLM_USE_V1": "0"})
    assert not verdict["ok"] and verdict["stage"] == "parallel config", verdict
    assert verdict["error"] == ("ValueError: Total number of attention heads (9) must be divisible by tensor "
                                "parallel size (2).")


def test_the_preflights_tensor_parallel_rule_agrees_with_vllm_0_8_5():
    """Where the preflight refuses a GPU count for the heads, vLLM's own parallel-config check does
    too, and where it allows one, vLLM starts: on the models of the sandbox's model store."""
    def refused(model, tp):
        report = _engine.Report()
        _engine.check_tensor_parallel(report, "vllm", "vllm_gpu_count", model, tp, _engine.GPU_TYPES["gpu-tesla-v100"])
        return [str(e) for e in report.errors]

    for model, tp, length in ((MODEL, 3, 4096), (MODEL_TP, 4, 2048), (MODEL, 4, 4096)):
        argv = ["--model", model, "--served-model-name", model, "--tensor-parallel-size", str(tp), "--dtype", "half",
                "--max-model-len", str(length), "--swap-space", "4", "--enforce-eager"]
        verdict = vllm_startup_check(argv, {"VLLM_USE_V1": "0"})
        mine = refused(model, tp)
        if mine:
            assert not verdict["ok"] and verdict["stage"] == "parallel config", (model, tp, verdict)
            assert "must be divisible by tensor parallel size (%d)" % tp in verdict["error"], verdict
        else:
            assert verdict["ok"], (model, tp, verdict)
    assert refused(MODEL, 4) and not refused(MODEL, 3) and not refused(MODEL_TP, 4)
