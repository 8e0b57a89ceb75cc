# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_webui: the core of the webui role, like llm_engine for the
engines. The role's variables -> the WebUI rules (``_engine.check('webui')``) -> the WEBUI_SECRET_KEY
Secret (generated once, then kept) -> the objects (``_manifests.webui_objects``) -> server-side
apply -> the rollout wait. ``preflight: true`` only checks; ``state: absent`` removes the WebUI and
keeps the chat history PVC and the secret key unless ``purge``."""

from __future__ import annotations

import secrets
import string

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine, _manifests
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection, _planner
from ansible_collections.haw_icc.llm.plugins.plugin_utils._component import ARGS, ComponentAction

P = "webui_"
# Role variables (after the prefix) that are not configuration the rules check: the run's own inputs,
# and the two that only build the default of openai_api_base_url.
_RUN_VARS = ("state", "purge", "wait", "engine_service", "engine_port")
_KEY_CHARS = string.ascii_letters + string.digits


class ActionModule(ComponentAction):
    _VALID_ARGS = frozenset(("preflight",)) | ARGS | _connection.OPTIONS
    component = "Open WebUI"

    def failure_what(self, task_vars):
        if self._task.args.get("preflight"):
            return "the Open WebUI settings were refused; nothing was changed"
        return super(ActionModule, self).failure_what(task_vars)

    def _run(self, result, task_vars, args):
        cfg = self.role_config(task_vars, P, _planner.role_defaults("webui"), skip=_RUN_VARS,
                               renames={"data_storage_class": "storage_class"})
        run = dict((k, self.role_var(task_vars, P + k, "")) for k in ("state", "purge", "wait"))
        state = self.state_of(run["state"], P)
        step = "apply" if args.get("preflight") else self.step_of(args)
        if step != "wait":  # the wait step runs after the apply step checked (and warned about) it
            report = _engine.check("webui", cfg)
            self.refuse(report, P, state)
        # only a checked name builds object names (a dict or a number makes no name)
        ns, names = cfg["namespace"], _manifests.webui_names(cfg["name"])
        selector = _manifests.selector_string(_manifests.webui_selector(cfg["name"]))

        def wait(kube, checksum):
            return self.wait(kube, ns, names["deployment"], selector, "WebUI", cfg, checksum=checksum)

        if step == "wait":
            self.wait_step(result, state, run, args, wait)
            return
        if state == "present" and report["warnings"]:
            result["warnings"] = ["%s: %s" % (ns, w) for w in report["warnings"]]
        result.update(changed=False, objects=[])
        if args.get("preflight"):
            return
        kube = _connection.client(args)
        purge = run["purge"] and not self.is_false(run["purge"])
        if state == "absent":
            steps = [("apps/v1", "Deployment", names["deployment"], 300), ("v1", "Service", names["service"], 0),
                     ("networking.k8s.io/v1", "Ingress", names["ingress"], 0)]
            if purge:
                steps += [("v1", "PersistentVolumeClaim", names["pvc"], 120), ("v1", "Secret", names["secret_key"], 0)]
            else:
                result["kept"] = ["PersistentVolumeClaim/%s" % names["pvc"], "Secret/%s" % names["secret_key"]]
            self.remove_all(kube, ns, steps, result)
            return

        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        # WEBUI_SECRET_KEY: generated once and reused forever, so users stay logged in across restarts.
        key = _apply.get(kube, "v1", "Secret", ns, names["secret_key"])
        if key is None:
            value = "".join(secrets.choice(_KEY_CHARS) for _i in range(48))
            key = self.apply_all(kube, [_manifests.webui_secret_key(cfg, value)], result)[0]
        versions = [key["metadata"].get("resourceVersion")]
        if cfg.get("openai_api_key_secret"):
            engine_key = _apply.get(kube, "v1", "Secret", ns, cfg["openai_api_key_secret"])
            versions.append(((engine_key or {}).get("metadata") or {}).get("resourceVersion"))
        objects = _manifests.webui_objects(cfg, secret_versions=versions)
        self.apply_all(kube, objects, result)
        if not cfg.get("ingress_enabled"):
            self.remove_all(kube, ns, [("networking.k8s.io/v1", "Ingress", names["ingress"], 0)], result)
        deployment = [o for o in objects if o["kind"] == "Deployment"][0]
        result["checksum"] = deployment["spec"]["template"]["metadata"]["annotations"][_manifests.CHECKSUM]
        if step == "all" and not self.no_wait_reason(state, run):
            result["rollout"] = wait(kube, result["checksum"])
