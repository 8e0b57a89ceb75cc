# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_remove: delete objects of one namespace in the order given
(cleanup.yml passes what haw_icc.llm.llm_objects_info planned: workloads first), each in the
foreground and waited for, on the controller, with a line about every 15 s while a deletion takes
long (a pod that stops slowly)."""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail

from ansible_collections.haw_icc.llm.plugins.module_utils import _apply
from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import elapsed_text
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection
from ansible_collections.haw_icc.llm.plugins.plugin_utils._component import PROGRESS_EVERY, ComponentAction, display


class ActionModule(ComponentAction):
    _VALID_ARGS = frozenset(("namespace", "objects", "wait_timeout")) | _connection.OPTIONS

    def failure_what(self, task_vars):
        return "not everything was removed"

    @staticmethod
    def _objects(value):
        if not isinstance(value, list):
            raise AnsibleActionFail("llm_remove: objects must be a list of {api_version, kind, name}.")
        out = []
        for obj in value:
            item = dict((k, (obj or {}).get(k) if isinstance(obj, dict) else None) for k in ("api_version", "kind", "name"))
            if not all(isinstance(v, str) and v for v in item.values()):
                raise AnsibleActionFail("llm_remove: objects: %r is not {api_version, kind, name}." % (obj,))
            if (item["api_version"], item["kind"]) not in _apply.KINDS:
                raise AnsibleActionFail("llm_remove: objects: %s/%s is not a kind of the collection (%s)." % (
                    item["api_version"], item["kind"], ", ".join(sorted(k for _a, k in _apply.KINDS))))
            out.append(item)
        return out

    def _run(self, result, task_vars, args):
        ns = args.get("namespace")
        if not isinstance(ns, str) or not ns:
            raise AnsibleActionFail("llm_remove: namespace is required.")
        objects = self._objects(args.get("objects") or [])
        try:
            wait_timeout = int(args.get("wait_timeout", 300))
        except (TypeError, ValueError):
            raise AnsibleActionFail("llm_remove: wait_timeout=%r: use a number of seconds such as 300."
                                    % (args.get("wait_timeout"),))
        result.update(changed=False, objects=[])
        if not objects:
            return
        kube = _connection.client(args)
        started = time.monotonic()
        shown = {"at": 0.0}
        for obj in objects:
            what = "%s/%s" % (obj["kind"], obj["name"])

            def progress(_waited, what=what):
                elapsed = time.monotonic() - started
                if elapsed - shown["at"] >= PROGRESS_EVERY:
                    shown["at"] = elapsed
                    display.display("  %s: %s removing %s (waiting until it%s is gone)" % (
                        ns, elapsed_text(elapsed), what, " and its pods" if obj["kind"] in ("Deployment", "Job") else ""))

            res = _apply.delete(kube, obj["api_version"], obj["kind"], ns, obj["name"], dry_run=self.check_mode,
                                wait_timeout=wait_timeout, progress=progress)
            self.record(result, res, obj["kind"], obj["name"])
        if shown["at"]:
            display.display("  %s: removed after %s" % (ns, elapsed_text(time.monotonic() - started)))
