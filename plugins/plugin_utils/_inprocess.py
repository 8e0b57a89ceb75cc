# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: run a module's ``run(module)`` (module_utils) inside its action plugin, so that
the action can print progress through ``Display`` while the module's logic waits. The options are
validated with the module's own argument spec (``ArgumentSpecValidator``, as AnsibleModule does:
types, defaults, ``K8S_AUTH_*`` fallbacks, aliases and their deprecations), typed errors become a
failed result as ``IccModule.fail_from`` makes them, and no_log values are masked in the result."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import IccError
from ansible_collections.haw_icc.llm.plugins.module_utils._module import ParamsModule
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _connection
from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once


def run(action, spec, rules, func, **kwargs):
    """The result of ``func(module, **kwargs)`` for the task of ``action`` (an ActionBase)."""
    validated = ArgumentSpecValidator(spec, **rules).validate(_connection.task_args(action))
    name = action._task.action
    if validated.error_messages:
        return dict(failed=True, msg="%s: %s" % (name, "; ".join(validated.error_messages)))
    module = ParamsModule(validated.validated_parameters, bool(action._task.check_mode))
    try:
        result = func(module, **kwargs)
    except IccError as exc:
        result = dict(exc.details)
        result.update(failed=True, msg=str(exc), error=type(exc).__name__)
    # as AnsibleModule reports them: an alias in deprecated_aliases, an option with removed_in_version
    deprecations = [dict((k, d[k]) for k in ("msg", "version", "date", "collection_name") if d.get(k))
                    for d in getattr(validated, "_deprecations", [])]
    if deprecations:
        result["deprecations"] = deprecations
    return remove_values(result, set(validated._no_log_values) | module.no_log_values)


class InProcessAction(ActionBase):
    """Base of an action plugin that runs its module's ``run(module, **callbacks)`` on the
    controller; with ``async`` the module runs as a module process, as without the plugin. A
    subclass sets ``task`` (the module_utils file with ``argument_spec``, ``RULES`` and ``run``) and
    implements ``callbacks(where)``: the keyword arguments of ``run`` that print progress."""

    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True
    task = None
    failure = None  # what failed, in a few words (plugin_utils/_failure.py)

    def callbacks(self, where):
        raise NotImplementedError

    @printed_once
    def run(self, tmp=None, task_vars=None):
        result = super(InProcessAction, self).run(tmp, task_vars)
        if self._task.async_val:
            result.update(self._execute_module(task_vars=task_vars, wrap_async=not self._connection.has_native_async))
            return result
        where = self._task.args.get("namespace") or (task_vars or {}).get("inventory_hostname")
        result.update(run(self, self.task.argument_spec(), self.task.RULES, self.task.run, **self.callbacks(where)))
        return result
