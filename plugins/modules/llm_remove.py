#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: llm_remove
short_description: Delete objects of one ICC namespace in order, each waited for, with progress
version_added: 0.2.0
description:
  - Deletes the O(objects) in the order given, each with foreground propagation (a Deployment's ReplicaSets
    and pods first), and waits until each is gone before the next, so that a workload has stopped before the
    Secrets and PVCs it mounts go. C(cleanup.yml) passes what M(haw_icc.llm.llm_objects_info) planned.
  - Runs on the controller (an action plugin, no module process) and prints a line about every 15 seconds while
    a deletion takes long (a pod that stops slowly), with the elapsed time and what it waits for.
  - An object that is already gone is not a change. Check mode sends the deletions as a server-side dry run.
  - Connects like the modules of the collection (O(kubeconfig), O(context), ... from C(module_defaults) of
    C(group/haw_icc.llm.icc) or the C(K8S_AUTH_*) environment variables).
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.connection
  - haw_icc.llm.connection.API_KEY
attributes:
  check_mode:
    support: full
    description: Each deletion is a server-side dry run; nothing goes, and nothing is waited for.
  diff_mode:
    support: full
    description: Shows each deleted object before it went, with Secret data hidden.
options:
  namespace:
    description: The namespace, normally your C(w<id>-default).
    type: str
    required: true
  objects:
    description: The objects to delete, in order; each a dictionary with C(api_version), C(kind) and C(name).
    type: list
    elements: dict
    required: true
  wait_timeout:
    description: Seconds to wait for each object to be gone.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: What would a cleanup remove?
  haw_icc.llm.llm_objects_info:
    namespace: w123456-default
  register: found

- name: Delete it, workloads first
  haw_icc.llm.llm_remove:
    namespace: w123456-default
    objects: "{{ found.remove }}"
"""

RETURN = r"""
objects:
  description: Each object asked for, with C(kind), C(name) and C(changed) (false when it was gone already).
  returned: always
  type: list
  elements: dict
"""
