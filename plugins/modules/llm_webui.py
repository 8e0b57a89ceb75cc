#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_webui
short_description: Deploy or remove Open WebUI in one ICC namespace, from the webui role's variables
version_added: 0.2.0
description:
  - The core of the M(haw_icc.llm.webui) role, which is this task twice
    (O(step=apply), then O(step=wait)). Runs on the controller (an action
    plugin, no module process per step), like M(haw_icc.llm.llm_engine) for the engines.
  - Reads the role's V(webui_*) variables (see its C(meta/argument_specs.yml)) and checks them; a refusal
    names the variable, the value and what to use, and nothing reaches the cluster.
  - With the role's C(state=present), generates the C(<name>-secret-key) Secret (WEBUI_SECRET_KEY) once
    and keeps it, applies (server-side apply, field manager C(haw-icc-llm)) the chat history PVC, the
    Service, the Deployment and, with C(ingress_enabled), the Ingress (else removes an old one), then (O(step))
    waits until the Deployment is Available with the rules of M(haw_icc.llm.rollout_status).
  - The pod's C(haw-icc.de/config-checksum) annotation covers the pod template and the resourceVersions of
    the Secrets it reads (its secret key and the engine's API key), so a rotated engine key restarts it.
  - With C(state=absent), removes the Deployment, the Service and the Ingress; the PVC and the secret key
    only with the role's C(purge).
author:
  - haw_icc.llm contributors (@haw-icc)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
  - haw_icc.llm.component
options:
  preflight:
    description: Only check the role's variables; nothing is read from or sent to the cluster.
    type: bool
    default: false
"""

EXAMPLES = r"""
# In a role task list (the webui role is exactly this):
- name: Make Open WebUI present
  haw_icc.llm.llm_webui:
    step: apply
  register: webui_applied

- name: Wait until Open WebUI is ready
  haw_icc.llm.llm_webui:
    step: wait
    checksum: "{{ webui_applied.checksum | default(omit) }}"
"""

RETURN = r"""
objects:
  description: Each object applied or removed, with C(kind), C(name), C(changed) and C(created).
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
  description: What C(state=absent) kept (the PVC and the secret key unless purge).
  returned: state is absent
  type: list
  elements: str
"""
