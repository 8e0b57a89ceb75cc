#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_health
short_description: Prove that an OpenAI-compatible LLM server really answers
version_added: 0.1.0
description:
  - Checks an OpenAI-compatible server (vLLM, Hugging Face TGI 1.4 or later, llama.cpp) in layers and
    reports each check with its status and latency, in this order. C(/health); C(/version) (vLLM) and
    C(/info) (TGI) where present; C(/v1/models) lists O(model); a chat completion returns non-empty
    text; a streamed chat completion gives the time to first token and tokens per second; optionally a
    C(/metrics) snapshot; optionally a small load test.
  - Endpoints a server does not have (HTTP 404) are reported as C(absent), not as failures; llama.cpp for
    example has no C(/metrics).
  - Tokens of the streamed answer are counted from the C(usage) the server sends in the stream when it does
    (C(stream_options.include_usage) is asked for), else from the number of content chunks, which is one
    token per chunk for vLLM, TGI and llama.cpp. The C(tokens_source) key of RV(stream) says which.
  - The server is a O(base_url), or a Kubernetes Service. A Service is reached through a port-forward that
    the module opens and closes itself through the API server (C(pods/portforward) of one Ready pod behind
    the Service, the same API C(kubectl port-forward) uses), so nothing has to run by hand. The API server's
    service proxy is not used because it needs the C(services/proxy) right and a network path from the API
    server to the pods, neither of which the ICC promises to students.
  - Read-only; never changes anything.
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.attributes.INFO_MODULE
options:
  base_url:
    description:
      - URL of the server without C(/v1), for example C(http://127.0.0.1:8000).
      - Mutually exclusive with O(service).
    type: str
  namespace:
    description: Namespace of O(service). Defaults to the namespace of the kubeconfig context.
    type: str
  service:
    description: Name of the Kubernetes Service in front of the engine.
    type: str
  port:
    description: Port of O(service).
    type: int
    default: 8000
  model:
    description:
      - The model name the server must list in C(/v1/models) and answer with.
      - If not set, the first listed model is used.
    type: str
  question:
    description: The question asked in the chat completions.
    type: str
    default: What is the capital of Germany? Answer in one word.
  max_tokens:
    description: Upper bound of tokens in each answer.
    type: int
    default: 32
  llm_api_key:
    description:
      - API key of the LLM server (not of Kubernetes), sent as a bearer token.
      - Not read from E(K8S_AUTH_API_KEY), which is a Kubernetes token.
      - The alias O(api_key) is deprecated and will be removed in 1.0.0 (it reads like the Kubernetes
        token option of kubernetes.core, which this module does not take).
    type: str
    aliases: [api_key]
  api_key_secret:
    description:
      - Name of a Secret in O(namespace) that holds the API key of the LLM server under the key
        O(api_key_secret_key), as the vllm role stores it (C(<name>-api-key)) or as a user's own Secret
        referenced by C(vllm_api_key_secret).
      - Read with the module's Kubernetes credentials when O(llm_api_key) is not given; the key is never
        returned.
    type: str
  api_key_secret_key:
    description: Key of the API key in O(api_key_secret).
    type: str
    default: api-key
  stream:
    description: Run the streamed completion check (time to first token, tokens per second).
    type: bool
    default: true
  metrics:
    description: Read C(/metrics) and return a parsed snapshot in RV(metrics).
    type: bool
    default: false
  requests:
    description:
      - Number of streamed chat completions of the load test. V(0) runs no load test.
      - The load test runs once, after the checks passed.
    type: int
    default: 0
  concurrency:
    description: How many load test requests run at the same time.
    type: int
    default: 1
  timeout:
    description: Seconds to wait for one HTTP answer (and between two chunks of a stream).
    type: int
    default: 60
  wait_timeout:
    description:
      - Seconds to keep probing while the server starts or loads its model (minutes on a real GPU).
        V(0) probes once.
      - On timeout the module fails with RV(elapsed) and RV(last_observation).
    type: int
    default: 0
  sleep:
    description: Seconds between two probes while waiting.
    type: int
    default: 5
notes:
  - The Kubernetes connection options are only used with O(service).
  - O(llm_api_key) is the key of the LLM server, not a Kubernetes token; with O(service) the Kubernetes
    credentials come from the kubeconfig (this module takes no Kubernetes token).
"""

EXAMPLES = r"""
- name: Wait until the deployed model answers, through its Service
  haw_icc.llm.llm_health:
    namespace: wabc123-default
    service: vllm
    model: TheBloke/Mistral-7B-Instruct-v0.2-GPTQ
    metrics: true
    wait_timeout: 1800
    sleep: 10
  register: health

- name: Show time to first token and tokens per second
  ansible.builtin.debug:
    msg: "TTFT {{ health.stream.ttft_s }} s, {{ health.stream.tokens_per_s }} tokens/s"

- name: A small load test against a server that is already reachable
  haw_icc.llm.llm_health:
    base_url: http://127.0.0.1:8000
    requests: 20
    concurrency: 4

- name: Ask an engine that requires an API key, with the key from the Secret the vllm role stored
  haw_icc.llm.llm_health:
    namespace: wabc123-default
    service: vllm
    api_key_secret: vllm-api-key
    stream: false
"""

RETURN = r"""
pod:
  description: The pod the checks reached through O(service) (not returned with O(base_url)).
  returned: success and O(service) is set
  type: str
  sample: vllm-6d9f7c7b9-x2x4q
node:
  description: The node of RV(pod).
  returned: success and O(service) is set
  type: str
  sample: gpu-v100-2
model:
  description: The model that answered.
  returned: success
  type: str
  sample: HuggingFaceTB/SmolLM2-135M-Instruct
models:
  description: The models the server lists in C(/v1/models).
  returned: success
  type: list
  elements: str
answer:
  description: The model's answer to O(question).
  returned: success
  type: str
usage:
  description: Token counts the server reported for the chat completion.
  returned: success
  type: dict
server:
  description: What C(/version) (key C(version)) and C(/info) (key C(info)) returned, where present.
  returned: success
  type: dict
checks:
  description:
    - One entry per check with C(name), C(status) (C(ok), C(absent), C(skipped) or C(failed)), C(ok) and
      C(latency_s), plus C(error) for a failed check.
  returned: always
  type: list
  elements: dict
stream:
  description:
    - Figures of the streamed completion. C(ttft_s) time to first token, C(tokens), C(tokens_source)
      (C(usage) or C(chunks)), C(tokens_per_s) (decode speed after the first token),
      C(e2e_tokens_per_s), C(total_s), C(chunks), C(finish_reason) and C(text).
  returned: success and O(stream=true)
  type: dict
metrics:
  description:
    - Parsed C(/metrics) with C(engine) (C(vllm), C(tgi) or C(unknown)) and, where the engine exports them,
      C(requests_running), C(requests_waiting), C(kv_cache_usage) (from C(vllm:kv_cache_usage_perc) or
      C(vllm:gpu_cache_usage_perc)), token counters and mean latencies; C(raw) has every vLLM/TGI metric
      summed over its labels. Empty if the server has no C(/metrics).
  returned: success and O(metrics=true)
  type: dict
load:
  description:
    - Load test figures. C(completed), C(failed), C(errors), C(duration_s), C(requests_per_s),
      C(output_tokens), C(tokens_source), C(output_tokens_per_s), C(latency_s) and C(ttft_s) (each with
      C(p50), C(p95) and C(max)).
  returned: success and O(requests) > 0
  type: dict
elapsed:
  description: Seconds spent, waiting included.
  returned: always
  type: float
attempts:
  description: How many times the checks ran.
  returned: always
  type: int
last_observation:
  description: On failure, the checks of the last attempt and its error.
  returned: failed
  type: dict
"""

from ansible_collections.haw_icc.llm.plugins.module_utils._llm_health import RULES, argument_spec, run
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule


def main():
    module = IccModule(argument_spec=argument_spec(), supports_check_mode=True, **RULES)
    module.run(run)


if __name__ == "__main__":
    main()
