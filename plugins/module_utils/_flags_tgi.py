# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every flag of TGI 2.4.1's text-generation-launcher, from its published source: ``struct Args`` in
``launcher/src/main.rs`` at tag v2.4.1 (clap: long flags in kebab case; ``Quantization`` and ``Dtype``
value enums), as documented in ``docs/source/reference/launcher.md`` of the same tag. Written by hand
(the launcher is a Rust binary that cannot run here); same shape as ``_flags_vllm.VLLM_FLAGS``."""

from __future__ import annotations

TGI_FLAGS_VERSION = "2.4.1"
_SWITCHES = ("--trust-remote-code", "--disable-custom-kernels", "--json-output", "--ngrok",
             "--disable-grammar-support", "--env", "-e", "--help", "-h", "--version", "-V")
_VALUES = ("--model-id", "--revision", "--validation-workers", "--num-shard", "--speculate",
           "--max-concurrent-requests", "--max-best-of", "--max-stop-sequences", "--max-top-n-tokens",
           "--max-input-tokens", "--max-input-length", "--max-total-tokens", "--waiting-served-ratio",
           "--max-batch-prefill-tokens", "--max-batch-total-tokens", "--max-waiting-tokens", "--max-batch-size",
           "--cuda-graphs", "--hostname", "--port", "-p", "--shard-uds-path", "--master-addr", "--master-port",
           "--huggingface-hub-cache", "--weights-cache-override", "--cuda-memory-fraction", "--rope-factor",
           "--otlp-endpoint", "--otlp-service-name", "--cors-allow-origin", "--api-key", "--watermark-gamma",
           "--watermark-delta", "--ngrok-authtoken", "--ngrok-edge", "--tokenizer-config-path",
           "--max-client-batch-size", "--lora-adapters", "--payload-limit")
_CHOICES = {
    "--sharded": ["false", "true"],
    "--quantize": ["awq", "bitsandbytes", "bitsandbytes-fp4", "bitsandbytes-nf4", "compressed-tensors", "eetq",
                   "exl2", "fp8", "gptq", "marlin"],
    "--dtype": ["bfloat16", "float16"],
    "--kv-cache-dtype": ["fp8_e4m3fn", "fp8_e5m2"],
    "--rope-scaling": ["dynamic", "linear"],
    "--usage-stats": ["no-stack", "off", "on"],
}
# flag -> (values: 0 a switch, 1 one value; choices or None), as in _flags_vllm
TGI_FLAGS = dict([(f, (0, None)) for f in _SWITCHES] + [(f, (1, None)) for f in _VALUES]
                 + [(f, (1, c)) for f, c in _CHOICES.items()])
