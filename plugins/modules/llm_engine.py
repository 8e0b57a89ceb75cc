#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_engine
short_description: Deploy or remove an LLM engine (vLLM, TGI, llama.cpp) in one ICC namespace, from its role's variables
version_added: 0.2.0
description:
  - The one core of the engine roles M(haw_icc.llm.vllm), M(haw_icc.llm.tgi) and M(haw_icc.llm.llamacpp); each role is this
    task twice (O(step=apply), then O(step=wait)). Runs on the controller (an action plugin, no module process per step).
  - Reads the engine role's variables (V(vllm_*), V(tgi_*), V(llamacpp_*); see the role's C(meta/argument_specs.yml))
    and checks them against the V100 and engine rules; a refusal names the variable, the value and what
    to use, and nothing reaches the cluster.
  - With the role's C(state=present), applies (server-side apply, field manager C(haw-icc-llm)) the
    Secrets of the token and the API key when given, the model cache PVC, the Service and the Deployment,
    built from the engine registry, then (O(step)) waits until the Deployment is Available with the rules
    of M(haw_icc.llm.rollout_status), printing a progress line about every 15 seconds.
  - The pod's C(haw-icc.de/config-checksum) annotation covers the pod template and the resourceVersions of
    the Secrets it reads, so a changed token restarts the pod and a changed wait timeout does not.
  - With C(state=absent), removes the Deployment (and waits until its pods are gone), the Service and the
    role's Secrets; the model cache PVC only with the role's C(purge).
  - Connects like the modules of the collection (O(kubeconfig), O(context), ... from C(module_defaults) of
    C(group/haw_icc.llm.icc) or the C(K8S_AUTH_*) environment variables).
author:
  - haw_icc.llm contributors (@haw-icc)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
  - haw_icc.llm.component
options:
  engine:
    description:
      - The engine, and so the role whose variables are read.
      - Required unless O(plan) is given (then it is the plan's C(engine)).
    type: str
    choices: [vllm, tgi, llamacpp]
  plan:
    description:
      - The settings of M(haw_icc.llm.llm_plan) (its C(facts.llm), or C(facts.llm_previous) with C(state=absent)),
        as the playbooks deploy, scale and change_model pass them.
      - The role configuration is then resolved as the plan resolved it (the role's defaults, what the running
        engine had, the user's role variables, the plan's settings), with the token as the plan reads it
        (C(icc_hf_token), else the role's C(hf_token)); the role does not have to be included.
    type: dict
  replaces:
    description:
      - The engine this one replaces, as M(haw_icc.llm.llm_plan) returns it in C(plan.switch) (C(engine) and
        C(name) of the running Deployment) when another engine, or another name, takes the namespace over.
      - With O(step=apply) or O(step=all) it is removed first (its Deployment, and its pods gone, so that its GPUs
        are free; its Service and Secrets) and its model cache PVC is kept. Nothing (null) replaces nothing.
    type: dict
notes:
  - The Secrets' values are never returned or shown.
"""

EXAMPLES = r"""
# In a role task list (the vllm role is exactly this):
- name: Make the vLLM server present
  haw_icc.llm.llm_engine:
    engine: vllm
    step: apply
  register: vllm_applied

- name: Wait until the vLLM server is ready
  haw_icc.llm.llm_engine:
    engine: vllm
    step: wait
    checksum: "{{ vllm_applied.checksum | default(omit) }}"

# What playbooks/tasks/engine.yml does with the plan of haw_icc.llm.llm_plan:
- name: Apply the engine of the plan
  haw_icc.llm.llm_engine:
    step: apply
    plan: "{{ llm_plan.facts.llm }}"
    # another engine runs in the namespace: remove it first (its model cache PVC stays)
    replaces: "{{ llm_plan.plan.switch }}"
  register: applied
"""

RETURN = r"""
objects:
  description: Each object applied or removed, with C(kind), C(name), C(changed) and (present) C(created).
  returned: always
  type: list
  elements: dict
checksum:
  description: The config checksum of the pod template this run applied.
  returned: state is present
  type: str
rollout:
  description: The rollout verdict (as M(haw_icc.llm.rollout_status) returns it).
  returned: state is present, O(step) is V(all) or V(wait), the role's wait is true and not in check mode
  type: dict
kept:
  description: What C(state=absent) kept (the model cache PVC unless purge).
  returned: state is absent
  type: list
  elements: str
replaced:
  description: The engine O(replaces) named and what its removal did (C(engine), C(name), C(objects), C(kept)).
  returned: O(replaces) is set and the step applies
  type: dict
"""
