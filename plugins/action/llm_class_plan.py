# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_class_plan: the class-wide GPU plan of one run (run_once),
on the controller. For every host of the play it resolves the same plan as llm_plan (with that
host's own variables and credentials), reads its quota and the GPUs its engine holds, reads the
nodes once (with icc_class_kubeconfig, else with the first host's credentials that may), and shares
the free GPUs in the inventory order (module_utils/_class_plan.py). It changes nothing and never
fails for one host: a host whose own plan cannot be made is left to llm_plan, which names why."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.haw_icc.llm.plugins.module_utils import _class_plan, _plan
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _planner
from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("workflow", "request", "wait_timeout"))

    failure = "the GPU plan of the run failed; nothing was changed"

    @printed_once
    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        try:
            workflow, request, wait_timeout = _planner.task_args(self._task.args, "llm_class_plan")
        except _planner.BadArgs as exc:
            raise AnsibleActionFail(str(exc))
        hostvars = task_vars.get("hostvars") or {}
        from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import gather, namespace_share

        requests, skipped, nodes, notes = [], [], None, []
        for host in task_vars.get("ansible_play_hosts") or []:
            hv = hostvars[host]

            def lookup(name, hv=hv):
                return hv[name] if name in hv else _plan.MISSING

            inputs = _plan.Inputs(lookup, host)
            if _plan.input_problems(inputs):
                skipped.append(host)
                continue
            ns = inputs.namespace
            try:
                kube = _planner.client(inputs)
                planned = _planner.plan_host(inputs, kube, workflow, request, wait_timeout)
                # The namespace's own quota and engine GPUs only; the cluster is read once, below.
                quota_free, held = namespace_share(kube, ns, _planner.ENGINE_SELECTOR)
                if nodes is None and not task_vars.get("icc_class_kubeconfig"):
                    # The first host's credentials that may read the nodes read every GPU type, once.
                    view = gather(kube, None, 1)
                    nodes = view["nodes"] if view["cluster_view"] else None
            except (IccError, _planner.NoEngine):
                skipped.append(host)
                continue
            llm = planned["llm"]
            requests.append({"host": host, "namespace": ns, "gpu_type": llm["gpu_type"], "count": int(llm["gpu_count"]),
                             "keeps": planned["change"]["action"] == "none", "quota_free": quota_free, "held": held})
        if nodes is None:
            nodes, note = self._nodes(task_vars, gather)
            if note:
                notes.append(note)
        plan = _class_plan.allocate(requests, nodes, "; ".join(notes) or None)
        result.update(changed=False, skipped=skipped, **plan)
        return result

    def _nodes(self, task_vars, gather):
        """Node views of every GPU node, read with icc_class_kubeconfig (a kubeconfig that may list
        nodes and pods cluster-wide, such as an instructor's), or None and why not."""
        kubeconfig = task_vars.get("icc_class_kubeconfig")
        if not kubeconfig:
            return None, "no credentials of this run may read nodes (set icc_class_kubeconfig to a kubeconfig that may)"
        try:
            inputs = _plan.Inputs({"icc_kubeconfig": self._templar.template(kubeconfig),
                                   "icc_context": task_vars.get("icc_class_context", _plan.MISSING)}.get, None)
            cap = gather(_planner.client(inputs), None, 1)
        except IccError as exc:
            return None, "icc_class_kubeconfig cannot read the nodes: %s" % exc.message
        if not cap.get("cluster_view"):
            return None, "icc_class_kubeconfig may not read the nodes and pods of all namespaces"
        return cap["nodes"], None
