"""Print the README's table of recommended llama.cpp models (V100 16 GB, V100S 32 GB) from the
collection's own memory fit (_llamacpp.memory_fit, the preflight's estimate), with the GGUF file
names as bartowski's repositories name them (<model>-<type>.gguf).

    .venv/bin/python hack/llamacpp_models.py
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from ansible_collections.haw_icc.llm.plugins.module_utils import _llamacpp  # noqa: E402

CTX = 8192
# (GPU type, GPUs, repository, GGUF type, what it is for)
PICKS = [
    ("gpu-tesla-v100", 1, "bartowski/Qwen2.5-7B-Instruct-GGUF", "Q6_K", "general chat (the role's default is Q4_K_M)"),
    ("gpu-tesla-v100", 1, "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF", "Q6_K", "general chat, English"),
    ("gpu-tesla-v100", 1, "bartowski/gemma-2-9b-it-GGUF", "Q6_K", "general chat"),
    ("gpu-tesla-v100", 1, "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF", "Q8_0", "code"),
    ("gpu-tesla-v100", 1, "bartowski/Phi-3.5-mini-instruct-GGUF", "Q8_0", "small and fast"),
    ("gpu-tesla-v100", 1, "bartowski/Qwen2.5-14B-Instruct-GGUF", "Q4_K_M", "the largest on one V100"),
    ("gpu-tesla-v100", 2, "bartowski/Qwen2.5-32B-Instruct-GGUF", "Q4_K_M", "split over 2 GPUs"),
    ("gpu-tesla-v100", 4, "bartowski/Llama-3.3-70B-Instruct-GGUF", "Q4_K_M", "split over a whole node"),
    ("gpu-tesla-v100s", 1, "bartowski/Qwen2.5-14B-Instruct-GGUF", "Q8_0", "general chat"),
    ("gpu-tesla-v100s", 1, "bartowski/Mistral-Small-24B-Instruct-2501-GGUF", "Q6_K", "general chat"),
    ("gpu-tesla-v100s", 1, "bartowski/Qwen2.5-Coder-32B-Instruct-GGUF", "Q4_K_M", "code"),
    ("gpu-tesla-v100s", 1, "bartowski/Qwen2.5-32B-Instruct-GGUF", "Q5_K_M", "the largest on one V100S"),
    ("gpu-tesla-v100s", 2, "bartowski/Llama-3.3-70B-Instruct-GGUF", "Q4_K_M", "split over 2 GPUs"),
]


def main():
    print("| GPUs | `icc_model` (llama.cpp) | GGUF file | GiB per GPU (of usable) | for |")
    print("|---|---|---|---|---|")
    for gpu, count, repo, quant, what in PICKS:
        fit = _llamacpp.memory_fit({"model": "%s:%s" % (repo, quant), "gpu_type": gpu, "gpu_count": count,
                                    "ctx_size": CTX}, 0.95, "icc_")
        if fit["verdict"] != "fits":
            raise SystemExit("%s:%s no longer fits: %s" % (repo, quant, fit["message"]))
        label = "V100S 32 GB" if gpu.endswith("v100s") else "V100 16 GB"
        print("| %d x %s | `%s:%s` | %s-%s.gguf | %s of %s | %s |" % (
            count, label, repo, quant, repo.split("/")[1][:-len("-GGUF")], quant, round(fit["need_gib"], 1),
            round(fit["budget_gib"], 1), what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
