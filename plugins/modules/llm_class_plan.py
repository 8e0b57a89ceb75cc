#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_class_plan
short_description: Share the free GPUs among the namespaces of one run before anything is created
version_added: 0.2.0
description:
  - Runs once on the controller (use it with C(run_once)), an action plugin, and changes nothing.
  - For every host of the play (a namespace), resolves the same plan as M(haw_icc.llm.llm_plan) with
    that host's own variables and credentials, and reads its ResourceQuota and the GPUs its engine holds.
  - Takes the namespaces in the inventory order and gives each its GPUs from what is left. A namespace
    whose engine keeps running as it is needs nothing new. Otherwise the GPUs of its current engine pod
    count as free for it (its rollout gives them back first), its quota must allow the GPUs, and
    where nodes can be read it takes the schedulable node of its GPU type with the fewest free GPUs that
    still has enough (best fit). What it takes is gone for the next ones.
  - Nodes are read with V(icc_class_kubeconfig) (and V(icc_class_context)) when set, else with the
    first host's credentials that may list nodes and pods cluster-wide. Where none may, only the
    quotas are planned, and RV(summary) says so.
  - Hosts whose own plan cannot be made (bad input, a namespace they may not read) are left out; their
    M(haw_icc.llm.llm_plan) refuses them naming why.
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.attributes.INFO_MODULE
options:
  workflow:
    description: As in M(haw_icc.llm.llm_plan).
    type: str
    choices: [deploy, scale, change_model]
    default: deploy
  request:
    description: As in M(haw_icc.llm.llm_plan), the same for every namespace.
    type: dict
    default: {}
  wait_timeout:
    description: As in M(haw_icc.llm.llm_plan).
    type: int
"""

EXAMPLES = r"""
- name: Share the free GPUs among the namespaces of this run
  haw_icc.llm.llm_class_plan:
    workflow: deploy
  run_once: true
  register: llm_class
"""

RETURN = r"""
hosts:
  description: Per host, C(fits), C(reason) and the planned C(node) (or null).
  returned: success
  type: dict
granted:
  description: The hosts that get their GPUs.
  returned: success
  type: list
  elements: str
refused:
  description: The hosts that do not, each with C(host), C(namespace) and C(reason).
  returned: success
  type: list
  elements: dict
nodes_planned:
  description: Whether node capacity was planned (nodes could be read).
  returned: success
  type: bool
summary:
  description: One line, for example C(24 of 30 namespaces get their GPUs; 6 refused, 6 x (1 x gpu-tesla-v100 not free)).
  returned: success
  type: str
skipped:
  description: Hosts left to their own plan.
  returned: success
  type: list
  elements: str
"""
