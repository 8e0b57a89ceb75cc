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
  - Asks an OpenAI-compatible server (vLLM, Hugging Face TGI 1.4 or later, llama.cpp) for its
    models and a chat completion, and reports each check with its latency.
  - The server is a O(base_url), or a Kubernetes Service reached through a port-forward that the
    module opens and closes itself through the API server (no C(kubectl) needed).
  - Read-only; never changes anything.
author:
  - haw_icc.llm contributors
extends_documentation_fragment:
  - haw_icc.llm.connection
attributes:
  check_mode:
    support: full
    description: The module changes nothing, so it runs fully in check mode.
  diff_mode:
    support: none
options:
  base_url:
    description:
      - URL of the server without C(/v1), for example C(http://127.0.0.1:8000).
      - Mutually exclusive with O(service).
    type: str
  namespace:
    description: Namespace of O(service).
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
    description: The question asked in the chat completion.
    type: str
    default: What is the capital of Germany? Answer in one word.
  max_tokens:
    description: Upper bound of tokens in the answer.
    type: int
    default: 32
  api_key:
    description: API key of the LLM server (not of Kubernetes), sent as a bearer token.
    type: str
  wait_timeout:
    description:
      - Seconds to keep probing while the server starts or loads its model. V(0) probes once.
    type: int
    default: 0
  sleep:
    description: Seconds between two probes while waiting.
    type: int
    default: 5
notes:
  - The Kubernetes connection options are only used with O(service).
"""

EXAMPLES = r"""
- name: Ask the deployed model a question through its Service
  haw_icc.llm.llm_health:
    namespace: wabc123-default
    service: vllm
    model: TheBloke/Mistral-7B-Instruct-v0.2-GPTQ
    wait_timeout: 1800
  register: health

- name: Probe a server that is already reachable
  haw_icc.llm.llm_health:
    base_url: http://127.0.0.1:8000
"""

RETURN = r"""
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
checks:
  description: One entry per check with C(name), C(ok) and C(latency_s).
  returned: always
  type: list
  elements: dict
elapsed:
  description: Seconds spent, waiting included.
  returned: always
  type: float
"""

import time

from ansible_collections.haw_icc.llm.plugins.module_utils._args import connection_spec
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule
from ansible_collections.haw_icc.llm.plugins.module_utils._openai import OpenAIClient


def probe(client, model, question, max_tokens):
    checks = []
    models, latency = client.models()
    checks.append(dict(name="models", ok=True, latency_s=round(latency, 4)))
    if model is None:
        if not models:
            raise ProbeError("The server lists no model in /v1/models.")
        model = models[0]
    elif model not in models:
        raise ProbeError("The server does not serve %r; it lists %s." % (model, models),
                         "Deploy that model, or set model to one of the listed names.")
    answer, usage, latency = client.chat(model, question, max_tokens)
    if not (answer or "").strip():
        raise ProbeError("The model %r answered with empty text." % model)
    checks.append(dict(name="chat", ok=True, latency_s=round(latency, 4)))
    return dict(model=model, models=models, answer=answer, usage=usage, checks=checks)


def run(module):
    params = module.params
    start = time.monotonic()
    deadline = start + max(0, params["wait_timeout"])

    def attempt():
        if params["base_url"]:
            return probe(OpenAIClient(params["base_url"], params["api_key"]), params["model"],
                         params["question"], params["max_tokens"])
        from ansible_collections.haw_icc.llm.plugins.module_utils._portforward import ServiceTunnel

        kube = module.client()
        namespace = params["namespace"] or kube.namespace or "default"
        with ServiceTunnel(kube, namespace, params["service"], params["port"]) as url:
            return probe(OpenAIClient(url, params["api_key"]), params["model"],
                         params["question"], params["max_tokens"])

    while True:
        try:
            result = attempt()
            break
        except ProbeError as exc:
            if time.monotonic() + params["sleep"] > deadline:
                exc.details["elapsed"] = round(time.monotonic() - start, 3)
                raise
            time.sleep(params["sleep"])
    result.update(changed=False, elapsed=round(time.monotonic() - start, 3))
    return result


def main():
    spec = connection_spec(
        base_url=dict(type="str"),
        namespace=dict(type="str"),
        service=dict(type="str"),
        port=dict(type="int", default=8000),
        model=dict(type="str"),
        question=dict(type="str", default="What is the capital of Germany? Answer in one word."),
        max_tokens=dict(type="int", default=32),
        api_key=dict(type="str", no_log=True),
        wait_timeout=dict(type="int", default=0),
        sleep=dict(type="int", default=5),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True,
                       mutually_exclusive=[("base_url", "service")],
                       required_one_of=[("base_url", "service")])
    module.run(run)


if __name__ == "__main__":
    main()
