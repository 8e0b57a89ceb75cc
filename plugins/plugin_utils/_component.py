# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: what the role cores ``llm_engine`` (vllm, tgi, llamacpp) and ``llm_webui`` share.

A role core is one action plugin task: read the role's variables, check them (refusing before the
cluster is touched), apply the objects in-process (``_apply``), show a diff, wait for the rollout
with a progress line now and then (``_rollout.wait_deployment``), or remove them. The connection is
that of the collection's modules (``_connection``)."""

from __future__ import annotations

import json
import re
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.haw_icc.llm.plugins.module_utils._engine import like_default
from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection
from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once

display = Display()

PROGRESS_EVERY = 15.0  # seconds between two progress lines of a rollout wait (one line per namespace)
STEPS = ("all", "apply", "wait")
ARGS = frozenset(("step", "checksum"))  # the arguments every role core takes besides the connection
_MISSING = object()

try:  # ansible-core >= 2.19 renders only strings trusted as templates (defaults/main.yml read by us is not)
    from ansible.template import trust_as_template
except ImportError:  # older lines render every string
    def trust_as_template(value):
        return value


def _trusted(value):
    return trust_as_template(value) if isinstance(value, str) else value


class ComponentAction(ActionBase):
    """Base of the role cores; a subclass implements ``_run(result, task_vars, args)``."""

    TRANSFERS_FILES = False
    component = "it"  # what the role core applies, in the headline of a failure

    def failure_what(self, task_vars):
        """What failed, for the headline of a failure (``_failure``)."""
        step = self._task.args.get("step") or "all"
        return {"apply": "applying %s failed" % self.component, "wait": "%s did not become ready" % self.component
                }.get(step, "%s failed" % self.component)

    @printed_once
    def run(self, tmp=None, task_vars=None):
        result = super(ComponentAction, self).run(tmp, task_vars)
        args = _connection.task_args(self)
        try:
            self._run(result, task_vars or {}, args)
        except AnsibleActionFail as exc:  # a failed result on every ansible-core line, with what is known
            result.update(exc.result)
            result.update(failed=True, msg=exc.message)
        except (IccError, TimeoutError) as exc:
            result.update(failed=True, msg=str(exc))
        except Exception as exc:  # an ApiException the client does not map (422 invalid, 409, 5xx)
            from ansible_collections.haw_icc.llm.plugins.module_utils._client import ApiException, api_message

            if not isinstance(exc, ApiException):
                raise
            result.update(failed=True, msg="The API server refused a change (HTTP %s): %s" % (exc.status, api_message(exc)))
        return result

    @property
    def check_mode(self):
        return bool(self._task.check_mode)

    def role_var(self, task_vars, name, default=_MISSING):
        """A role variable, templated; a missing one without a default is a usage error."""
        if name not in task_vars:
            if default is _MISSING:
                raise AnsibleActionFail("%s: the role variable %s is not set (is the task in its role?)"
                                        % (self._task.action, name))
            return default
        return self._templar.template(task_vars[name])

    def role_config(self, task_vars, prefix, defaults, skip=(), renames=None):
        """The role configuration the rules check: each role variable of ``defaults`` (the role's
        defaults/main.yml) without the prefix, except ``skip``; ``renames`` maps a variable suffix to
        the configuration key it is checked as. A variable that is not set (the task runs outside its
        role, as in deploy.yml) has the role's default."""
        renames = renames or {}
        templar = self._templar
        if any(key not in task_vars for key in defaults):  # the defaults may refer to each other
            available = dict((k, _trusted(v)) for k, v in defaults.items())
            available.update(task_vars)
            templar = templar.copy_with_new_env(available_variables=available)
        cfg = {}
        for key in defaults:
            suffix = key[len(prefix):]
            if key.startswith(prefix) and suffix not in skip:
                value = templar.template(task_vars[key] if key in task_vars else _trusted(defaults[key]))
                cfg[renames.get(suffix, suffix)] = like_default(value, defaults[key])
        return cfg

    @staticmethod
    def refuse(report, prefix, state):
        """Fail with the report's errors (for state absent only those of the names)."""
        errors = report["errors"]
        if state == "absent":  # removing needs valid names only
            errors = [e for e in errors if re.match("^%s(name|namespace)=" % prefix, e)]
        if errors:
            raise AnsibleActionFail(" ".join(errors))

    @staticmethod
    def state_of(value, prefix):
        state = value or "present"
        if state not in ("present", "absent"):
            raise AnsibleActionFail("%sstate=%s: use present or absent." % (prefix, state))
        return state

    def step_of(self, args):
        """``step``: ``all`` (apply, then wait), ``apply`` or ``wait``. The roles run apply and wait as
        two tasks, so that a run over many namespaces applies every one before the first wait: their
        pods start (and load their models) at the same time, not ``forks`` at a time."""
        step = args.get("step") or "all"
        if step not in STEPS:
            raise AnsibleActionFail("%s: step=%s: use one of %s." % (self._task.action, step, ", ".join(STEPS)))
        return step

    def no_wait_reason(self, state, run):
        """Why this run does not wait for the rollout, or None when it does."""
        return ("state is absent" if state == "absent" else "check mode" if self.check_mode
                else "the role's wait is false" if self.is_false(run["wait"]) else None)

    def wait_step(self, result, state, run, kube_args, wait):
        """The ``wait`` step: ``wait()`` the rollout of what the apply step applied (``checksum``), or
        say why there is nothing to wait for."""
        reason = self.no_wait_reason(state, run)
        if reason:
            result.update(changed=False, skipped=True, skip_reason="Nothing to wait for: %s." % reason)
            return
        result.update(changed=False, rollout=wait(_connection.client(kube_args), kube_args.get("checksum") or None))

    @staticmethod
    def is_false(value):
        return value is False or str(value).lower() in ("false", "no", "0", "off")

    def apply_all(self, kube, objects, out):
        """Apply ``objects`` in order; records each in ``out["objects"]`` and its diff. Returns the
        API server's answers (dry-run answers in check mode)."""
        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        answers = []
        for obj in objects:
            res = _apply.apply(kube, obj, dry_run=self.check_mode)
            self.record(out, res, obj["kind"], obj["metadata"]["name"])
            answers.append(res["after"])
        return answers

    def record(self, out, res, kind, name):
        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        out.setdefault("objects", []).append({"kind": kind, "name": name, "changed": res["changed"],
                                              "created": res["before"] is None and "after" in res})
        if res["changed"]:
            out["changed"] = True
            if self._task.diff:
                out.setdefault("diff", []).append(_apply.diff(res["before"], res.get("after")))

    def remove_all(self, kube, namespace, steps, out):
        """Delete ``(api_version, kind, name, wait seconds)`` steps in order (dry run in check mode)."""
        from ansible_collections.haw_icc.llm.plugins.module_utils import _apply

        for api_version, kind, name, wait in steps:
            res = _apply.delete(kube, api_version, kind, namespace, name, dry_run=self.check_mode, wait_timeout=wait)
            self.record(out, res, kind, name)

    def wait(self, kube, namespace, name, selector, what, cfg, checksum=None):
        """Wait for the Deployment ``name`` (the role's wait_timeout and unschedulable_grace), with a
        progress line every PROGRESS_EVERY seconds; fails with the reason when it cannot get ready."""
        from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import wait_deployment

        from ansible_collections.haw_icc.llm.plugins.module_utils import _rollout

        shown = {"at": 0.0, "lines": 0}

        def progress(elapsed, verdict):
            if elapsed - shown["at"] >= PROGRESS_EVERY:
                shown["at"] = elapsed
                shown["lines"] += 1
                display.display("  %s: %s %s %s: %s" % (namespace, _rollout.elapsed_text(elapsed), what, name,
                                                        self.phase_of(kube, namespace, verdict.get("pods") or [])))

        started = time.monotonic()
        verdict, failure = wait_deployment(kube, namespace, name, selector, what, int(cfg["wait_timeout"]), poll=1.0,
                                           unschedulable_grace=float(cfg["unschedulable_grace"]), checksum=checksum,
                                           progress=progress)
        if failure:
            raise AnsibleActionFail(failure, result=dict(rollout=verdict))
        if shown["lines"]:
            took = _rollout.elapsed_text(time.monotonic() - started)
            display.display("  %s: %s %s ready after %s" % (namespace, what, name, took))
        return verdict

    @staticmethod
    def phase_of(kube, namespace, pods):
        """The progress phrase (``_rollout.phase``) of the newest pod: its Events and, while it runs
        but is not ready, its container's last log line. A read that fails only shortens the line."""
        from ansible.module_utils.six.moves.urllib.parse import quote
        from ansible_collections.haw_icc.llm.plugins.module_utils import _rollout

        pod = _rollout.newest(pods)
        events, last_log = [], None
        if pod is not None:
            name = pod["metadata"]["name"]
            base = "/api/v1/namespaces/%s" % quote(namespace, safe="")
            try:
                events = json.loads(kube.get_raw(base + "/events", {"fieldSelector": "involvedObject.name=%s" % name})
                                    ).get("items") or []
                running = [cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
                           if "running" in (cs.get("state") or {}) and not cs.get("ready")]
                if running:
                    raw = kube.get_raw("%s/pods/%s/log" % (base, quote(name, safe="")),
                                       {"container": running[0]["name"], "tailLines": "1"}, accept="*/*")
                    last_log = raw.decode("utf-8", "replace").strip().splitlines()[-1:] or None
                    last_log = last_log[0] if last_log else None
            except Exception:  # pylint: disable=broad-except
                pass  # progress is best effort; the wait itself reports real failures
        return _rollout.phase(pods, events, last_log)
