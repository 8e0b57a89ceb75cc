# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_engine: the one core of the engine roles (vllm, tgi, ...).

One task, on the controller, no module process: the role's variables -> the engine's rules
(``_engines`` / ``_engine.check``) -> the objects (``_manifests``) -> server-side apply
(``_apply``) -> the rollout wait (``_rollout.wait_deployment``, with a progress line now and then).
``state: absent`` removes what the role created and keeps the model cache PVC unless ``purge``."""

from __future__ import annotations

import re

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.haw_icc.llm.plugins.module_utils import _engines, _manifests
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection, _planner

display = Display()

# Role variables (after the prefix) that are not part of the configuration the rules check.
_RUN_VARS = ("state", "purge", "wait", "hf_token", "api_key")
PROGRESS_EVERY = 30.0  # seconds between two progress lines of a rollout wait


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("engine",)) | _connection.OPTIONS

    def _role_vars(self, engine, task_vars):
        """(cfg, run): the role configuration (the role's variables without their prefix) and the
        run's own inputs (state, purge, wait, the token and the key)."""
        p = engine.prefix
        missing = object()

        def var(key, default=missing):
            if p + key not in task_vars:
                if default is missing:
                    raise AnsibleActionFail("llm_engine: the role variable %s%s is not set (is the task in the %s role?)"
                                            % (p, key, engine.name))
                return default
            return self._templar.template(task_vars[p + key])

        cfg = {}
        for key in _planner.role_defaults(engine):
            suffix = key[len(p):]
            if key.startswith(p) and suffix not in _RUN_VARS and suffix != "cache_storage_class":
                cfg[suffix] = var(suffix)
        cfg["storage_class"] = var("cache_storage_class", "")
        run = dict((k, var(k, "")) for k in _RUN_VARS)
        return cfg, run

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        try:
            return self._run(result, task_vars or {})
        except AnsibleActionFail as exc:  # a failed result on every ansible-core line, with what is known
            result.update(exc.result)
            result.update(failed=True, msg=exc.message)
            return result

    def _run(self, result, task_vars):
        args = _connection.task_args(self)
        engine = _engines.get(args.get("engine"))
        if engine is None:
            raise AnsibleActionFail("llm_engine: engine=%r: use one of %s." % (args.get("engine"), ", ".join(_engines.names())))
        cfg, run = self._role_vars(engine, task_vars)
        state = run["state"] or "present"
        if state not in ("present", "absent"):
            raise AnsibleActionFail("%sstate=%s: use present or absent." % (engine.prefix, state))

        report = engine.check(cfg)
        errors = report["errors"]
        if state == "absent":  # removing needs valid names only
            errors = [e for e in errors if re.match("^%s(name|namespace)=" % engine.prefix, e)]
        if errors:
            raise AnsibleActionFail(" ".join(errors))
        if state == "present" and report["warnings"]:
            result["warnings"] = ["%s: %s" % (cfg["namespace"], w) for w in report["warnings"]]

        try:
            kube = _connection.client(args)
            if state == "absent":
                result.update(self._absent(kube, engine, cfg, bool(run["purge"])))
            else:
                result.update(self._present(kube, engine, cfg, run))
        except (IccError, TimeoutError) as exc:
            raise AnsibleActionFail(str(exc))
        except Exception as exc:  # an ApiException the client does not map (422 invalid, 409, 5xx)
            from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException, api_message

            if not isinstance(exc, ApiException):
                raise
            raise AnsibleActionFail("The API server refused a change in %s (HTTP %s): %s"
                                    % (cfg["namespace"], exc.status, api_message(exc)))
        return result

    # --- present --------------------------------------------------------------------------------

    def _present(self, kube, engine, cfg, run):
        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        check = bool(self._task.check_mode)
        names = _manifests.names(engine, cfg["name"])
        applied, diffs, versions = [], [], []
        refs = {"hf": cfg.get("hf_token_secret") or "", "key": cfg.get("api_key_secret") or ""}
        for which, value in (("hf", run["hf_token"]), ("key", run["api_key"] if engine.api_key else "")):
            if not value:
                continue
            out = _apply.apply(kube, _manifests.secret(engine, cfg, which, value), dry_run=check)
            refs[which] = names["hf_secret" if which == "hf" else "key_secret"]
            versions.append(((out["after"] or {}).get("metadata") or {}).get("resourceVersion"))
            applied.append(self._entry(out, "Secret", refs[which]))
            if out["changed"]:
                diffs.append(_apply.diff(out["before"], out["after"]))
        objects = _manifests.engine_objects(engine, cfg, hf_secret=refs["hf"], key_secret=refs["key"],
                                            secret_versions=versions)
        deployment = objects[-1]
        for obj in objects:
            out = _apply.apply(kube, obj, dry_run=check)
            applied.append(self._entry(out, obj["kind"], obj["metadata"]["name"]))
            if out["changed"]:
                diffs.append(_apply.diff(out["before"], out["after"]))
        result = {"changed": any(a["changed"] for a in applied), "objects": applied,
                  "checksum": deployment["spec"]["template"]["metadata"]["annotations"][_manifests.CHECKSUM]}
        if self._task.diff and diffs:
            result["diff"] = diffs
        if check or run["wait"] is False or str(run["wait"]).lower() in ("false", "no", "0"):
            return result
        result["rollout"] = self._wait(kube, engine, cfg, result["checksum"])
        return result

    @staticmethod
    def _entry(out, kind, name):
        return {"kind": kind, "name": name, "changed": out["changed"], "created": out["before"] is None}

    def _wait(self, kube, engine, cfg, checksum):
        from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import wait_deployment

        ns, name = cfg["namespace"], cfg["name"]
        shown = {"at": 0.0}

        def progress(elapsed, verdict):
            if elapsed - shown["at"] >= PROGRESS_EVERY:
                shown["at"] = elapsed
                display.display("  %s: waiting for %s %s, %d s: %s" % (ns, engine.display, name, elapsed, verdict["reason"]))

        verdict, failure = wait_deployment(kube, ns, name, _manifests.selector_string(engine, name), engine.display,
                                           int(cfg["wait_timeout"]), poll=1.0,
                                           unschedulable_grace=float(cfg["unschedulable_grace"]),
                                           checksum=checksum, progress=progress)
        if failure:
            raise AnsibleActionFail(failure, result=dict(rollout=verdict))
        return verdict

    # --- absent ---------------------------------------------------------------------------------

    def _absent(self, kube, engine, cfg, purge):
        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        check = bool(self._task.check_mode)
        ns, names = cfg["namespace"], _manifests.names(engine, cfg["name"])
        # The Deployment first, and its pods gone (foreground), so that its GPUs are free afterwards.
        steps = [("apps/v1", "Deployment", names["deployment"], 300), ("v1", "Service", names["service"], 0),
                 ("v1", "Secret", names["hf_secret"], 0)]
        if names["key_secret"]:
            steps.append(("v1", "Secret", names["key_secret"], 0))
        if purge:
            steps.append(("v1", "PersistentVolumeClaim", names["pvc"], 120))
        removed = []
        for api_version, kind, name, wait in steps:
            out = _apply.delete(kube, api_version, kind, ns, name, dry_run=check, wait_timeout=wait)
            removed.append({"kind": kind, "name": name, "changed": out["changed"]})
        return {"changed": any(r["changed"] for r in removed), "objects": removed,
                "kept": [] if purge else ["PersistentVolumeClaim/%s" % names["pvc"]]}
