"""Refusals name the variable the user sets: the memory-fit advice names the context-length
variable of each prefix (there is no icc_max_model_len)."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _memory as e


@pytest.mark.parametrize("prefix,variable", [
    ("icc_", "icc_max_total_tokens"),
    ("vllm_", "vllm_max_model_len"),
    ("tgi_", "tgi_max_total_tokens"),
])
def test_a_too_long_context_names_the_context_variable(prefix, variable):
    fit = e.memory_fit("HuggingFaceTB/SmolLM2-135M-Instruct", "gpu-tesla-v100", 1, "", "", 1000000,
                       variable_prefix=prefix)
    assert fit["verdict"] == "refuse"
    assert "Use a shorter context (%s, the engine's max_model_len)" % variable in fit["message"]
    assert "%smax_model_len" % prefix not in fit["message"] or prefix == "vllm_"


def test_a_guessed_size_names_the_context_variable_too():
    fit = e.memory_fit("someone/Foo-3B", "gpu-tesla-v100", 1, "", "", 65536)
    assert fit["verdict"] == "tight" and "A shorter context (icc_max_total_tokens)" in fit["message"]
