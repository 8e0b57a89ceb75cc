#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: icc_login
short_description: Set up ICC access from the kubeconfig downloaded at the ICC login portal
version_added: 0.1.0
description:
  - Reads the kubeconfig that the ICC login portal (U(https://icc-login.informatik.haw-hamburg.de/))
    hands out, usually saved as C(config.txt), sets the namespace of its context (from O(user_id) or
    O(namespace)), checks it against the API server and merges it into O(dest).
  - Every other cluster, user and context of O(dest) is kept. Entries with the same names are
    replaced, which is how a new token after a new login replaces the expired one.
  - Validation asks the API server for its version, for the rights the collection needs in the namespace
    (SelfSubjectAccessReviews), whether nodes may be listed, and for the namespace's ResourceQuota.
  - Nothing is written when anything fails. A broken existing O(dest) is only replaced when O(backup=true).
author:
  - haw_icc.llm contributors (!UNKNOWN)
attributes:
  check_mode:
    support: full
    description: Reads and validates, writes nothing, and reports whether O(dest) would change.
  diff_mode:
    support: full
    description: Shows the change of O(dest) with every token, client key and password masked.
options:
  src:
    description:
      - The downloaded kubeconfig (C(config.txt)).
      - Required with O(state=present). With O(state=absent) it names the context to remove if O(context) is not set.
    type: path
  dest:
    description: The kubeconfig to create or update. Written with mode C(0600).
    type: path
    default: ~/.kube/config
  user_id:
    description:
      - Your ICC login, V(infw) followed by letters and digits. V(infwabc123) gives namespace V(wabc123-default).
      - If neither O(user_id) nor O(namespace) is set, the namespace of the downloaded context is used.
    type: str
  namespace:
    description: The namespace to use, instead of the one derived from O(user_id).
    type: str
  context:
    description: Name of the context in O(dest). Defaults to the context name of O(src).
    type: str
  variables:
    description:
      - "The names of the caller's variables by option, such as C({src: icc_login_src, user_id: icc_user_id}), for a
        playbook that passes its own variables on. A refusal then names the variable as the user wrote it
        (C(icc_login_src=...) and C(Set icc_login_src to ...)) instead of the module's option."
    type: dict
    default: {}
  merge:
    description:
      - Merge into an existing O(dest), keeping its other entries.
      - If V(false), O(dest) is replaced by the new kubeconfig alone.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of O(dest) before changing it.
    type: bool
    default: true
  validate:
    description: Check the kubeconfig against the API server before writing it.
    type: bool
    default: true
  validate_certs:
    description: Verify the API server's TLS certificate while validating.
    type: bool
    default: true
  request_timeout:
    description: Seconds to wait for one answer of the API server, so that a missing VPN fails quickly.
    type: int
    default: 10
  state:
    description:
      - V(present) adds or updates the entries; V(absent) removes the context, and the cluster and user
        that no other context uses.
    type: str
    choices: [present, absent]
    default: present
notes:
  - From outside the HAW network the ICC API server is only reachable through the HAW VPN.
  - The token of the ICC expires; when the module reports HTTP 401, log in at the portal again,
    download the new C(config.txt) and run the module again.
"""

EXAMPLES = r"""
- name: Set up ICC access from the downloaded config.txt
  haw_icc.llm.icc_login:
    src: ~/Downloads/config.txt
    user_id: infwabc123
  register: login

- name: Show what the account may do
  ansible.builtin.debug:
    msg: "{{ login.namespace }}: missing {{ login.missing_permissions }}, GPU quota {{ login.quota.gpu }}"

- name: A separate kubeconfig, no merging
  haw_icc.llm.icc_login:
    src: ~/Downloads/config.txt
    dest: ~/.kube/icc.yaml
    merge: false

- name: Remove the ICC entries again
  haw_icc.llm.icc_login:
    context: infwabc123@icc
    state: absent
"""

RETURN = r"""
namespace:
  description: The namespace of the context.
  returned: state=present
  type: str
  sample: wabc123-default
context:
  description: The name of the context in O(dest).
  returned: always
  type: str
  sample: infwabc123@icc
server:
  description: The API server URL.
  returned: state=present
  type: str
server_version:
  description: The API server's version (null with O(validate=false)).
  returned: state=present
  type: str
  sample: v1.31.2
permissions:
  description: What the account may do, one boolean per right (empty with O(validate=false)).
  returned: state=present
  type: dict
  sample: {create_deployments: true, list_nodes: false}
missing_permissions:
  description: Rights in the namespace the collection needs and the account lacks.
  returned: state=present
  type: list
  elements: str
cluster_view:
  description: Whether nodes and pods of all namespaces may be listed (full answers of gpu_capacity).
  returned: state=present
  type: bool
quota:
  description: The namespace's quota for C(gpu), C(cpu), C(memory) and C(memory_limit).
  returned: state=present
  type: dict
  sample: {gpu: {hard: 4, used: 0, free: 4}, cpu: {hard: "32", used: "0"}}
login_url:
  description: The ICC login portal, where a fresh kubeconfig can be downloaded.
  returned: always
  type: str
dest:
  description: The kubeconfig written.
  returned: always
  type: str
backup_file:
  description: The backup of O(dest) made before changing it.
  returned: changed and a backup was made
  type: str
  sample: /home/me/.kube/config.12345.2026-01-01@10:00:00~
"""

import os

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import InputError, KubeconfigError
from ansible_collections.haw_icc.llm.plugins.module_utils._icc import LOGIN_URL
from ansible_collections.haw_icc.llm.plugins.module_utils._kubeconfig import read_kubeconfig
from ansible_collections.haw_icc.llm.plugins.module_utils._login import (
    load_dest,
    login_entries,
    masked_yaml,
    merge,
    remove,
    validate_access,
    write_kubeconfig,
)
from ansible_collections.haw_icc.llm.plugins.module_utils._module import IccModule, kubeconfig_secrets


def _write(module, dest, before, after, state, result):
    """Write ``after`` if it differs from ``before`` (or the mode is not 0600); backup first."""
    exists = os.path.exists(dest)
    mode_ok = exists and (os.stat(dest).st_mode & 0o777) == 0o600
    changed = state != "ok" or before != after or not mode_ok
    if state.startswith("broken") and exists and not module.params["backup"]:
        raise KubeconfigError("dest %s exists but is %s; it is not overwritten without a backup."
                              % (dest, state.split(": ", 1)[1]),
                              "Set backup: true (the default), or move the file away.")
    if module._diff:
        result["diff"] = dict(before_header=dest, after_header=dest,
                              before=masked_yaml(before) if state == "ok" else ("<%s>\n" % state if exists else ""),
                              after=masked_yaml(after))
    if changed and not module.check_mode:
        if exists and module.params["backup"]:
            result["backup_file"] = module.backup_local(dest)
        write_kubeconfig(dest, after)
    result["changed"] = changed


def run(module):
    p = module.params
    dest = p["dest"]
    result = dict(changed=False, dest=dest, login_url=LOGIN_URL)
    if p["state"] == "absent":
        context = p["context"]
        if not context:
            if not p["src"]:
                raise InputError("context", None, "needed to know what to remove with state=absent",
                                 "the context name (e.g. infwabc123@icc) or src")
            context = login_entries(read_kubeconfig(p["src"], "src"), p["user_id"], p["namespace"], None)[0]["context"]["name"]
        result["context"] = context
        before, state = load_dest(dest)
        if before is None:
            return result
        after = remove(before, context)
        if after is None:
            return result
        module.no_log_values.update(kubeconfig_secrets(before))
        _write(module, dest, before, after, state, result)
        return result

    if not p["src"]:
        raise InputError("src", None, "required with state=present",
                         "the kubeconfig downloaded at %s (config.txt)" % LOGIN_URL)
    data = read_kubeconfig(p["src"], "src")
    module.no_log_values.update(kubeconfig_secrets(data))
    entries, minimal, namespace = login_entries(data, p["user_id"], p["namespace"], p["context"])
    context = entries["context"]["name"]
    result.update(namespace=namespace, context=context, server=entries["cluster"]["cluster"]["server"],
                  server_version=None, permissions={}, missing_permissions=[], quota={}, cluster_view=None)
    before, state = load_dest(dest)
    if before is not None:
        module.no_log_values.update(kubeconfig_secrets(before))
    if p["validate"]:
        from ansible_collections.haw_icc.llm.plugins.module_utils._client import build_client

        kube = build_client(kubeconfig=minimal, context=context, validate_certs=p["validate_certs"],
                            request_timeout=p["request_timeout"])
        result.update(validate_access(kube, namespace))
    after = merge(before if p["merge"] else None, entries)
    _write(module, dest, before, after, state, result)
    return result


def main():
    spec = dict(
        src=dict(type="path"),
        dest=dict(type="path", default="~/.kube/config"),
        user_id=dict(type="str"),
        namespace=dict(type="str"),
        context=dict(type="str"),
        merge=dict(type="bool", default=True),
        backup=dict(type="bool", default=True),
        validate=dict(type="bool", default=True),
        validate_certs=dict(type="bool", default=True),
        request_timeout=dict(type="int", default=10),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        variables=dict(type="dict", default={}),
    )
    module = IccModule(argument_spec=spec, supports_check_mode=True,
                       mutually_exclusive=[("user_id", "namespace")])
    module.run(run)


if __name__ == "__main__":
    main()
