# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_engine: the one core of the engine roles (vllm, tgi, ...).

One task, on the controller, no module process: the role's variables -> the engine's rules
(``_engines`` / ``_engine.check``) -> the objects (``_manifests``) -> server-side apply
(``_apply``) -> the rollout wait (``_rollout.wait_deployment``, with a progress line now and then).
``state: absent`` removes what the role created and keeps the model cache PVC unless ``purge``."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _manifests, _plan
from ansible_collections.haw_icc.llm.plugins.module_utils import _model_facts
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection, _planner
from ansible_collections.haw_icc.llm.plugins.plugin_utils._component import ARGS, ComponentAction

# Role variables (after the prefix) that are the run's own inputs, not configuration the rules check.
_RUN_VARS = ("state", "purge", "wait", "hf_token", "api_key", "settings")


class ActionModule(ComponentAction):
    _VALID_ARGS = frozenset(("engine", "plan", "replaces")) | ARGS | _connection.OPTIONS
    component = "the engine"

    @staticmethod
    def removal(engine, name, purge=False):
        """What removing the engine ``name`` deletes, in order: the Deployment first, and its pods gone
        (foreground), so that its GPUs are free afterwards; the model cache PVC only with ``purge``."""
        names = _manifests.names(engine, name)
        steps = [("apps/v1", "Deployment", names["deployment"], 300), ("v1", "Service", names["service"], 0),
                 ("v1", "Secret", names["hf_secret"], 0)]
        if names["key_secret"]:
            steps.append(("v1", "Secret", names["key_secret"], 0))
        if purge:
            steps.append(("v1", "PersistentVolumeClaim", names["pvc"], 120))
        return steps, [] if purge else ["PersistentVolumeClaim/%s" % names["pvc"]]

    def replace(self, kube, namespace, replaces, result):
        """``replaces``: the engine this one replaces (haw_icc.llm.llm_plan's ``plan.switch``:
        ``{engine, name}``), removed before the new one is applied; its model cache PVC is kept."""
        old = _engines.get(replaces.get("engine")) if isinstance(replaces, dict) else None
        if old is None or not isinstance(replaces.get("name"), str) or not replaces["name"]:
            raise AnsibleActionFail("llm_engine: replaces=%r: use the plan's switch, {engine: one of %s, name: "
                                    "its Deployment}." % (replaces, ", ".join(_engines.names())))
        steps, kept = self.removal(old, replaces["name"])
        removed = {"engine": old.name, "name": replaces["name"], "objects": [], "kept": kept}
        self.remove_all(kube, namespace, steps, removed)
        result["changed"] = result.get("changed") or bool(removed.pop("changed", False))
        if removed.get("diff"):
            result.setdefault("diff", []).extend(removed.pop("diff"))
        result["replaced"] = removed

    @staticmethod
    def settings(value, cfg, prefix):
        """``<prefix>settings``: settings over the role variables (scale and change_model pass what the
        running engine had); each must be a setting of the role."""
        if value in ("", None):
            return {}
        if not isinstance(value, dict):
            raise AnsibleActionFail("%ssettings=%r: use a mapping of settings, e.g. {max_num_seqs: 64}." % (prefix, value))
        unknown = sorted(k for k in value if k not in cfg)
        if unknown:
            raise AnsibleActionFail("%ssettings: %s %s not a setting of the role; use the names of its variables "
                                    "without the prefix %s." % (prefix, ", ".join(unknown), "is" if len(unknown) == 1 else "are", prefix))
        return value

    def from_plan(self, task_vars, engine, llm):
        """``plan``: the settings of haw_icc.llm.llm_plan (its ``llm``, or ``llm_previous`` with
        ``state``) -> the role configuration, as the plan resolved it (``_plan.role_config``: the
        role's defaults, what the running engine had, the user's role variables, the plan's settings),
        and the run's inputs. What deploy, scale and change_model apply, without a role per engine."""
        if not isinstance(llm, dict) or llm.get("engine") != engine.name:
            raise AnsibleActionFail("llm_engine: plan must be the settings of haw_icc.llm.llm_plan for engine %s."
                                    % engine.name)
        inputs = _planner.inputs(self._templar, task_vars)
        cfg = _plan.role_config(inputs, engine, _planner.role_defaults(engine), llm)
        run = {"state": llm.get("state") or "present", "purge": False, "settings": {},
               "wait": self.role_var(task_vars, engine.prefix + "wait", ""),
               "hf_token": _plan.hf_token(inputs, engine),
               "api_key": self.role_var(task_vars, engine.prefix + "api_key", "") if engine.api_key else ""}
        return cfg, run

    def _run(self, result, task_vars, args):
        engine = _engines.get(args.get("engine") or (args.get("plan") or {}).get("engine"))
        if engine is None:
            raise AnsibleActionFail("llm_engine: engine=%r: use one of %s." % (args.get("engine"), ", ".join(_engines.names())))
        p, step = engine.prefix, self.step_of(args)
        if args.get("plan"):
            cfg, run = self.from_plan(task_vars, engine, args["plan"])
        else:
            cfg = self.role_config(task_vars, p, _planner.role_defaults(engine), skip=_RUN_VARS,
                                   renames={"cache_storage_class": "storage_class"})
            run = dict((k, self.role_var(task_vars, p + k, "")) for k in _RUN_VARS)
            cfg.update(self.settings(run["settings"], cfg, p))
        state = self.state_of(run["state"], p)
        if step != "wait":  # the wait step runs after the apply step checked (and warned about) it
            # The Hub facts the plan read for this model (haw_icc.llm.llm_plan), when it did.
            facts = self.role_var(task_vars, "llm_model_facts", None)
            if not (isinstance(facts, dict) and facts.get("model") == _model_facts.repository(cfg.get("model"))):
                facts = None
            report = engine.check(cfg, facts)
            self.refuse(report, p, state)
        # only a checked name builds the selector (a dict or a number makes no label)
        selector = _manifests.selector_string(_manifests.selector(engine, cfg["name"]))

        def wait(kube, checksum):
            return self.wait(kube, cfg["namespace"], cfg["name"], selector, engine.display, cfg, checksum=checksum)

        if step == "wait":
            self.wait_step(result, state, run, args, wait)
            return
        if state == "present" and report["warnings"]:
            result["warnings"] = ["%s: %s" % (cfg["namespace"], w) for w in report["warnings"]]
        kube = _connection.client(args)
        result.update(changed=False, objects=[])
        if state == "absent":
            steps, kept = self.removal(engine, cfg["name"], bool(run["purge"]) and not self.is_false(run["purge"]))
            if kept:
                result["kept"] = kept
            self.remove_all(kube, cfg["namespace"], steps, result)
            return
        if args.get("replaces"):
            self.replace(kube, cfg["namespace"], args["replaces"], result)

        # The Secrets of the values given (the pod reads them through secretKeyRef), else the user's own.
        refs = {"hf": cfg.get("hf_token_secret") or "", "key": cfg.get("api_key_secret") or ""}
        secrets = [(w, v) for w, v in (("hf", run["hf_token"]), ("key", run["api_key"] if engine.api_key else "")) if v]
        answers = self.apply_all(kube, [_manifests.secret(engine, cfg, w, v) for w, v in secrets], result)
        for (which, _value), answer in zip(secrets, answers):
            refs[which] = answer["metadata"]["name"]
        versions = [(a.get("metadata") or {}).get("resourceVersion") for a in answers]
        objects = _manifests.engine_objects(engine, cfg, hf_secret=refs["hf"], key_secret=refs["key"],
                                            secret_versions=versions)
        self.apply_all(kube, objects, result)
        result["checksum"] = objects[-1]["spec"]["template"]["metadata"]["annotations"][_manifests.CHECKSUM]
        if step == "all" and not self.no_wait_reason(state, run):
            result["rollout"] = wait(kube, result["checksum"])
