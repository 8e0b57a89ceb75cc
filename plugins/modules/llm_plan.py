#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_plan
short_description: Plan a deploy, scale or model change of the LLM engine in one ICC namespace
version_added: 0.2.0
description:
  - Runs on the controller (an action plugin, no module process) and changes nothing.
  - Reads the host's variables as the user set them (V(icc_*), V(vllm_*), V(tgi_*), V(llamacpp_*), inventory and
    extra vars), the engine Deployment that runs in the namespace now, and the workflow's request.
  - Returns the wanted engine settings as the fact C(llm), what runs now as C(llm_previous), and what
    will change (RV(plan)), including whether the engine pod, and so the model, restarts.
  - Refuses, naming the variable as the user set it and what to use instead, before anything is
    created, an unknown engine, a namespace name or a number that is not one, the V100 and engine
    rules, a model that does not fit the GPUs, a gated model without a token, missing rights in the
    namespace, and GPUs that cannot be scheduled now.
  - The GPUs of the engine pod that the change replaces (a C(Recreate) rollout, or another engine that
    a switch of V(icc_engine) removes first) count as free.
  - Connects with V(icc_kubeconfig) and V(icc_context) of the host (default E(KUBECONFIG) or
    C(~/.kube/config) and its current context).
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.attributes.INFO_MODULE
options:
  workflow:
    description:
      - V(deploy) starts from the inventory; V(scale) and V(change_model) start from the running
        Deployment and need one.
    type: str
    choices: [deploy, scale, change_model]
    default: deploy
  request:
    description:
      - The workflow's overrides, for example a new C(gpu_count) or a new C(model) and C(quantization).
      - Keys are V(model), V(quantization), V(max_model_len), V(gpu_count) and V(shm_size).
    type: dict
    default: {}
  wait_timeout:
    description: Seconds the engine role waits for the rollout (not part of the pod's configuration).
    type: int
  class_plan:
    description:
      - This host's entry of the class-wide GPU plan (the C(hosts) that M(haw_icc.llm.llm_class_plan) returns).
      - When it does not fit, the host is refused with its reason before anything is created.
    type: dict
notes:
  - Facts it sets C(llm), C(llm_previous), C(llm_live), C(llm_names), C(llm_cfg); they hold Secret names,
    never secret values.
"""

EXAMPLES = r"""
- name: Plan a deploy from the inventory
  haw_icc.llm.llm_plan:
    workflow: deploy
  register: plan

- name: Plan a scale to two GPUs
  haw_icc.llm.llm_plan:
    workflow: scale
    request:
      gpu_count: 2
"""

RETURN = r"""
plan:
  description: What the workflow will change.
  returned: success
  type: dict
  contains:
    action:
      description: V(create), V(switch) (another engine is removed first), V(update) or V(none).
      type: str
    restart:
      description: Whether the engine pod restarts (the model is loaded again).
      type: bool
    changes:
      description: The settings that change, each with C(setting), C(from) and C(to).
      type: list
      elements: dict
    switch:
      description: The engine (C(engine), C(name)) that is removed first, or null.
      type: dict
    summary:
      description: One line for people.
      type: str
memory_fit:
  description: The memory-fit estimate of the model on the GPUs (verdict, message, need_gib, budget_gib).
  returned: success
  type: dict
capacity:
  description: Whether the GPUs can be scheduled now (fits, reason, release).
  returned: success
  type: dict
"""
