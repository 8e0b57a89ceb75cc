# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side: a failed task of the collection prints its reason once.

ansible-core 2.19 and later print a failed task twice in the default callback (and in every
callback built on it): an ``[ERROR]: Task failed: <msg>`` block with the task's origin, then
``fatal: [host]: FAILED! => {"msg": <msg>, ...}``. Every action of the collection fails through
``once``: the error block gets a short headline (the namespace and what failed), the result's
``msg`` keeps the whole reason and what to do. So the reason is printed once, in the result, and a
registered result, ``rescue``'s ``ansible_failed_result`` and ``ignore_errors`` see the same ``msg``
as before. Older ansible-core lines print only the result, so there the failed result is returned
as it is; so is the result of a task with ``failed_when``, ``until`` or a loop, which ansible-core
evaluates on the returned result."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.plugins.action.normal import ActionModule as _Normal
from ansible.utils.display import Display

from ansible.release import __version__ as _CORE_VERSION

# ansible-core 2.19 and later: a failed result carries an error summary that the callbacks print.
PRINTS_TWICE = tuple(int(part) for part in _CORE_VERSION.split(".")[:2]) >= (2, 19)

BELOW = "why, and what to do: the msg below"


def headline(where, what):
    """The error block's one line: ``wstu001-default: the model did not answer (why, ...)``."""
    return "%s: %s (%s)" % (where, what, BELOW) if where else "%s (%s)" % (what, BELOW)


def where_of(action, task_vars):
    """The namespace a task works on: its ``namespace`` option, else the inventory host."""
    namespace = action._task.args.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else (task_vars or {}).get("inventory_hostname")


def what_of(action, task_vars):
    """What failed, in a few words: the action's ``failure_what(task_vars)`` or ``failure``, else the
    task's name."""
    what = getattr(action, "failure_what", None)
    if callable(what):
        return what(task_vars or {})
    return getattr(action, "failure", None) or action._task.get_name()


def _show_messages(result):
    """ansible-core reads ``warnings`` and ``deprecations`` from a returned result only; for a raised
    one they go through ``Display``, whose messages the task's result gets all the same."""
    display = Display()
    for text in result.pop("warnings", None) or []:
        display.warning(str(text))
    for item in result.pop("deprecations", None) or []:
        if isinstance(item, dict) and item.get("msg"):
            display.deprecated(item["msg"], version=item.get("version"), date=item.get("date"),
                               collection_name=item.get("collection_name"))


def once(action, result, task_vars):
    """``result``, or for a failed one the exception that prints its reason once (see above)."""
    task = action._task
    if not result.get("failed") or not PRINTS_TWICE or task.failed_when or task.until or task.loop:
        return result
    result = dict(result)
    _show_messages(result)
    raise AnsibleAction(headline(where_of(action, task_vars), what_of(action, task_vars)), result=result)


def printed_once(run):
    """Decorator of an action plugin's ``run``: an ``AnsibleActionFail`` it raises or a failed result
    it returns goes through ``once``."""

    @functools.wraps(run)
    def wrapper(self, tmp=None, task_vars=None):
        try:
            result = run(self, tmp, task_vars)
        except AnsibleActionFail as exc:  # .result: with msg on 2.19, without on 2.21
            result = dict(exc.result, failed=True, msg=exc.message)
        return once(self, result, task_vars)

    return wrapper


class ModuleAction(_Normal):
    """The action of a module that runs as a module process (``ansible.builtin.normal``'s), whose
    failure prints once. A subclass sets ``failure``: what failed, in a few words."""

    failure = None

    @printed_once
    def run(self, tmp=None, task_vars=None):
        return super(ModuleAction, self).run(tmp, task_vars)
