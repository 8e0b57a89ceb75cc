"""vLLM 0.8.5's own start-up checks, run on a pod's argv and environment (sandbox only; no GPU).

Runs in the sandbox's vLLM venv (hack/sandbox-venv.sh vllm: vllm==0.8.5 from PyPI). Input, as JSON on stdin:
``{"argv": [...], "env": {...}}``: the engine container's args (the image's entrypoint is vLLM's
OpenAI API server, which parses them with ``make_arg_parser``) and the environment a kubelet would
give it (tests/cluster/kubelet_env.py). What it runs, all of it vLLM's own code:

1. every variable of ``vllm.envs`` evaluated with that environment (``VLLM_PORT=tcp://...`` from a
   Service named ``vllm`` fails here, as vllm/envs.py does at start-up);
2. the API server's parser (``make_arg_parser``) and ``validate_parsed_serve_args``; an unknown flag
   fails as ``vllm serve`` does;
3. ``AsyncEngineArgs.from_cli_args`` and ``create_model_config`` from the model's ``config.json`` in the
   sandbox's local model store (tests/cluster/models, laid out as an offline Hugging Face cache);
4. the parallel config against the model (``ModelConfig.verify_with_parallel_config``: the attention
   heads must divide by the tensor-parallel size) and the cache config (swap space against this
   machine's memory).

What needs a GPU (the platform, the CUDA graphs, loading weights) is not run. Output: one JSON line,
``{"ok": true, "checks": [...], "serve": {"model", "names", "n_ctx", "api_key"}}`` (what vLLM's API server
would serve: its model names, max_model_len and API key) or ``{"ok": false, "error": "<vLLM's last error line>", "stage": ...}``;
exit status 0 or 1.

``--serve`` (what tests/cluster/pod_runner.py starts for every vLLM pod of the sandbox): one process
imports vLLM once, then reads one ``{"argv", "env"}`` JSON line at a time and forks a child per check,
which sets the pod's environment, runs the same checks and returns the verdict plus vLLM's output.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import traceback

STORE = pathlib.Path(__file__).resolve().parent / "models"
# The only variables the sandbox adds to the pod's environment: vLLM reads the model config from the
# local store offline instead of from the Hub (the pod's own HF_HOME/HF_HUB_CACHE are paths on its PVC).
SANDBOX_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_DISABLE_TELEMETRY")


def hub_cache(root):
    """Lay the store out as a Hugging Face hub cache (models--org--name/snapshots/<rev>/config.json)."""
    rev = "0" * 40
    for config in STORE.glob("*/*/config.json"):
        org, name = config.parent.parent.name, config.parent.name
        repo = root / ("models--%s--%s" % (org, name))
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        shutil.copy(config, snap / "config.json")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(rev)


def sandbox_env(home):
    return dict(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"),
                HF_HUB_DISABLE_TELEMETRY="1")


def set_environment(pod_env, home):
    """The process environment: the pod's, plus the sandbox's offline model store (SANDBOX_ENV)."""
    os.environ.clear()
    os.environ.update(dict(pod_env), PATH=os.defpath, HOME=str(home))
    os.environ.update(sandbox_env(home))


def as_a_v100():
    """There is no GPU here. Where vLLM's configuration code asks for the GPU's compute capability
    (the quantization checks, e.g. gptq_bitblas / gptq_marlin compatibility), answer as a Tesla V100
    does: 7.0. Nothing else of the GPU is emulated."""
    import torch  # pylint: disable=import-outside-toplevel
    from vllm.platforms import current_platform  # pylint: disable=import-outside-toplevel
    from vllm.platforms.interface import DeviceCapability  # pylint: disable=import-outside-toplevel

    torch.cuda.get_device_capability = lambda device=None: (7, 0)
    type(current_platform).get_device_capability = classmethod(lambda cls, device_id=0: DeviceCapability(7, 0))


def run_check(argv):
    """vLLM's own start-up code on ``argv`` with the current environment; returns the verdict."""
    checks, stage = [], "vllm.envs"
    try:
        as_a_v100()
        from vllm import envs

        for name in envs.environment_variables:
            getattr(envs, name)
        checks.append("every vllm.envs variable evaluated (%d)" % len(envs.environment_variables))

        stage = "argument parser"
        from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
        from vllm.utils import FlexibleArgumentParser

        # The image's entrypoint is `python3 -m vllm.entrypoints.openai.api_server`: its program name.
        parser = make_arg_parser(FlexibleArgumentParser(prog="api_server.py",
                                                        description="vLLM OpenAI-Compatible RESTful API server."))
        err, sys.stderr = sys.stderr, io.StringIO()
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            said = [ln for ln in sys.stderr.getvalue().splitlines() if ln.strip()]
            err.write(sys.stderr.getvalue())
            raise SystemExit(said[-1] if said else "the argument parser exited") from None
        finally:
            sys.stderr = err
        validate_parsed_serve_args(args)
        checks.append("argv parsed and validated")

        stage = "engine arguments"
        from vllm.config import CacheConfig, ParallelConfig
        from vllm.engine.arg_utils import AsyncEngineArgs

        engine_args = AsyncEngineArgs.from_cli_args(args)
        stage = "model config"
        model_config = engine_args.create_model_config()
        checks.append("model config of %s (max_model_len %d, dtype %s)" % (
            model_config.model, model_config.max_model_len, model_config.dtype))

        stage = "parallel config"
        parallel = ParallelConfig(tensor_parallel_size=engine_args.tensor_parallel_size,
                                  pipeline_parallel_size=engine_args.pipeline_parallel_size)
        model_config.verify_with_parallel_config(parallel)
        checks.append("tensor parallel %d against %d attention heads" % (
            parallel.tensor_parallel_size, model_config.hf_text_config.num_attention_heads))

        stage = "cache config"
        cache = CacheConfig(block_size=engine_args.block_size or 16,
                            gpu_memory_utilization=engine_args.gpu_memory_utilization,
                            swap_space=engine_args.swap_space, cache_dtype=engine_args.kv_cache_dtype)
        cache.verify_with_parallel_config(parallel)
        checks.append("swap space %s GiB x %d workers" % (engine_args.swap_space, parallel.tensor_parallel_size))
        # What the API server would serve (vllm/entrypoints/openai/api_server.py: the names, and the key
        # from --api-key, else VLLM_API_KEY), for the pod's own engine process (pod_engines.py).
        serve = {"model": args.model, "names": list(args.served_model_name or [args.model]),
                 "n_ctx": model_config.max_model_len, "api_key": args.api_key or envs.VLLM_API_KEY}
    except BaseException as exc:  # pylint: disable=broad-except
        if isinstance(exc, SystemExit):  # the parser's own last line, as the pod's log ends
            error = str(exc.code)
        else:
            traceback.print_exc()  # what the pod's log would show
            error = [ln for ln in traceback.format_exception_only(type(exc), exc) if ln.strip()][-1].strip()
        return {"ok": False, "stage": stage, "error": error, "checks": checks}
    return {"ok": True, "checks": checks, "serve": serve}


def main():
    spec = json.load(sys.stdin)
    home = pathlib.Path(tempfile.mkdtemp(prefix="vllm-check-"))
    try:
        hub_cache(home / "hub")
        set_environment(spec["env"], home)
        verdict = run_check(spec["argv"])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.stdout = sys.__stdout__
    print(json.dumps(verdict))
    return 0 if verdict["ok"] else 1


# --- --serve: one process for many pods (tests/cluster/pod_runner.py) --------------------------------

def _child(spec, home, out_fd, result_fd):
    """In the forked child: the pod's environment, its output to ``out_fd``, the verdict to ``result_fd``."""
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    set_environment(spec["env"], home)
    verdict = run_check(spec["argv"])
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(result_fd, "w") as result:
        result.write(json.dumps(verdict))
    os._exit(0)  # pylint: disable=protected-access


def check_forked(spec, home):
    """Run one check in a forked child (vLLM stays imported in the parent, so a check takes about a
    second instead of the 20 s of a fresh process). Returns the verdict with ``output``: what vLLM
    printed, as the pod's log would hold it."""
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(res_r)
        try:
            _child(spec, home, out_w, res_w)
        finally:
            os._exit(3)  # pylint: disable=protected-access
    os.close(out_w)
    os.close(res_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(res_r, "rb") as res:
        output = out.read()
        raw = res.read()
    _pid, status = os.waitpid(pid, 0)
    try:
        verdict = json.loads(raw.decode())
    except ValueError:
        verdict = {"ok": False, "stage": "check process", "checks": [],
                   "error": "the check process ended with status %s and no verdict" % status}
    verdict["output"] = output.decode("utf-8", "replace")[-20000:]
    return verdict


def serve():
    """Read one ``{"argv", "env"}`` JSON line at a time from stdin, answer each with one verdict line."""
    # The protocol keeps the real stdout; whatever vLLM prints (it logs to stdout) goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    home = pathlib.Path(tempfile.mkdtemp(prefix="vllm-check-server-"))
    hub_cache(home / "hub")
    set_environment({}, home)  # offline before huggingface_hub and transformers read their settings
    # What every check imports, imported once here (the children inherit it).
    import vllm.config  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import vllm.engine.arg_utils  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    import vllm.entrypoints.openai.cli_args  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    # One check in this process first: what vLLM imports lazily on the way is then loaded for every child.
    warm = run_check(["--model", "HuggingFaceTB/SmolLM2-135M-Instruct", "--dtype", "half", "--max-model-len", "2048"])
    print(json.dumps({"ready": True, "warm_up": warm["ok"]}), file=out)
    try:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(check_forked(json.loads(line), home)), file=out)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
