"""vLLM 0.8.5's own start-up checks, run on a pod's argv and environment (sandbox only; no GPU).

Runs in the sandbox's vLLM venv (hack/vllm-env.sh: vllm==0.8.5 from PyPI). Input, as JSON on stdin:
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
``{"ok": true, "checks": [...]}`` or ``{"ok": false, "error": "<vLLM's last error line>", "stage": ...}``;
exit status 0 or 1.
"""

from __future__ import annotations

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


def main():
    spec = json.load(sys.stdin)
    home = pathlib.Path(tempfile.mkdtemp(prefix="vllm-check-"))
    hub_cache(home / "hub")
    env = dict(spec["env"])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"),
               HF_HUB_DISABLE_TELEMETRY="1")
    os.environ.clear()
    os.environ.update(env, PATH=os.defpath, HOME=str(home))
    checks, stage = [], "vllm.envs"
    try:
        from vllm import envs

        for name in envs.environment_variables:
            getattr(envs, name)
        checks.append("every vllm.envs variable evaluated (%d)" % len(envs.environment_variables))

        stage = "argument parser"
        from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
        from vllm.utils import FlexibleArgumentParser

        import io

        # The image's entrypoint is `python3 -m vllm.entrypoints.openai.api_server`: its program name.
        parser = make_arg_parser(FlexibleArgumentParser(prog="api_server.py",
                                                        description="vLLM OpenAI-Compatible RESTful API server."))
        err, sys.stderr = sys.stderr, io.StringIO()
        try:
            args = parser.parse_args(spec["argv"])
        except SystemExit:
            said = [ln for ln in sys.stderr.getvalue().splitlines() if ln.strip()]
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
    except BaseException as exc:  # pylint: disable=broad-except
        if isinstance(exc, SystemExit):  # the parser's own last line, as the pod's log ends
            error = str(exc.code)
        else:
            error = [ln for ln in traceback.format_exception_only(type(exc), exc) if ln.strip()][-1].strip()
        sys.stdout = sys.__stdout__
        print(json.dumps({"ok": False, "stage": stage, "error": error, "checks": checks}))
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({"ok": True, "checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
