# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_plan: the plan of deploy, scale and change_model, on the
controller, in one step (no module process): the user's variables -> the live engine -> the
wanted settings -> the model's facts on the Hugging Face Hub -> the rules, the memory fit and the
gated check -> the rights -> the GPUs.
The logic is in module_utils/_plan.py (pure, unit-tested); this file reads and talks to the API."""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.haw_icc.llm.plugins.module_utils import _plan
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _planner
from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("workflow", "request", "wait_timeout", "class_plan"))

    failure = "the preflight stopped the run; nothing was changed"

    @printed_once
    def run(self, tmp=None, task_vars=None):
        started = time.time()
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        try:
            workflow, request, wait_timeout = _planner.task_args(args, "llm_plan")
        except _planner.BadArgs as exc:
            raise AnsibleActionFail(str(exc))
        inputs = _planner.inputs(self._templar, task_vars)

        problems = _plan.input_problems(inputs)
        if problems:
            raise AnsibleActionFail(" ".join(problems) + " Nothing was changed.")
        ns = inputs.namespace
        kubeconfig = inputs.get("icc_kubeconfig", None)
        context = inputs.get("icc_context", None)

        from ansible_collections.haw_icc.llm.plugins.module_utils._client import namespace_read_failure

        try:
            kube = _planner.client(inputs)
            planned = _planner.plan_host(inputs, kube, workflow, request, wait_timeout)
        except _planner.NoEngine as exc:
            raise AnsibleActionFail(str(exc))
        except IccError as exc:
            raise AnsibleActionFail(namespace_read_failure(ns, kubeconfig, context, exc))
        engine, llm, names, cfg, facts = (planned["engine"], planned["llm"], planned["names"], planned["cfg"],
                                          planned["facts"])
        refusals, warnings, fit = _plan.checks(inputs, engine, llm, names, cfg, facts,
                                               (planned["previous"] or {}).get("model"))
        unreachable = _plan.hub_unreachable(facts)
        if unreachable:
            warnings.insert(0, unreachable)
        if _plan.deprecations(inputs):
            result["deprecations"] = _plan.deprecations(inputs)
        prefix = "Preflight refused %s: " % ns
        if refusals:
            raise AnsibleActionFail(prefix + " ".join(refusals) + " Nothing was changed on the cluster.")
        share = args.get("class_plan")
        if share and not share.get("fits"):
            raise AnsibleActionFail(prefix + "%s x %s: %s. Nothing was changed; the namespaces before it in the inventory "
                                    "were planned first (run it again when GPUs are free)."
                                    % (llm["gpu_count"], llm["gpu_type"], share.get("reason")))

        from ansible_collections.haw_icc.llm.plugins.module_utils._capacity import gather
        from ansible_collections.haw_icc.llm.plugins.module_utils._login import missing_summary, validate_access

        try:
            access = validate_access(kube, ns)
        except IccError as exc:
            raise AnsibleActionFail(
                prefix + "%s Use your own namespace (icc_namespace w<id>-default) with your own kubeconfig "
                "(icc_kubeconfig, from haw_icc.llm.login). Nothing was changed." % exc.message)
        if access["missing_permissions"]:
            raise AnsibleActionFail(
                prefix + "the account may not %s there. Use your own namespace (icc_namespace w<id>-default) with "
                "your own kubeconfig (icc_kubeconfig, from haw_icc.llm.login). Nothing was changed."
                % missing_summary(access["missing_permissions"]))
        try:
            # The engine pod a Recreate rollout replaces, or the engine a switch removes first,
            # gives its GPUs back before the new pod is scheduled.
            capacity = gather(kube, ns, int(llm["gpu_count"]), llm["gpu_type"], release_selector=_planner.ENGINE_SELECTOR)
        except IccError as exc:
            raise AnsibleActionFail(namespace_read_failure(ns, kubeconfig, context, exc))
        if not capacity["fits"]:
            raise AnsibleActionFail(
                prefix + "%s x %s cannot be scheduled now: %s. Ask for fewer GPUs (icc_gpu_count / gpu_count), free "
                "GPUs in your namespace, or try later. Nothing was changed."
                % (llm["gpu_count"], llm["gpu_type"], capacity["reason"]))

        change = planned["change"]
        result.update(
            changed=False,
            workflow=workflow,
            started=started,  # when the plan began (the deploy summary's time to ready)
            plan=dict(change, summary=_plan.summary_line(ns, change)),
            memory_fit=fit,
            model_facts=facts,
            capacity=dict(fits=capacity["fits"], reason=capacity["reason"], release=capacity.get("release")),
            class_plan=share,
            # The plan's settings; tasks/plan.yml sets them as the variables llm, llm_live, ... (set_fact:
            # ansible-core 2.21 deprecates facts a module returns as top-level variables).
            facts=dict(llm=llm, llm_live=planned["live"], llm_previous=planned["previous"], llm_names=names,
                       llm_cfg=cfg, llm_model_facts=facts),
        )
        if warnings:
            result["warnings"] = warnings
        return result
