"""A failed task of the collection prints its reason once (plugins/plugin_utils/_failure.py): the
[ERROR] block of ansible-core 2.19+ gets a headline, the result keeps the whole msg. What the
default callback prints of it is checked in tests/integration/test_installed_collection.py."""

from __future__ import annotations

import types

import pytest

from ansible.errors import AnsibleAction, AnsibleActionFail

from ansible_collections.haw_icc.llm.plugins.plugin_utils import _failure


def action(args=None, name="Plan", failed_when=None, until=None, loop=None, **attrs):
    task = types.SimpleNamespace(args=args or {}, failed_when=failed_when, until=until, loop=loop,
                                 get_name=lambda: name)
    return types.SimpleNamespace(_task=task, **attrs)


def raised(act, result, task_vars=None):
    with pytest.raises(AnsibleAction) as info:
        _failure.once(act, result, {"inventory_hostname": "wstu001-default"} if task_vars is None else task_vars)
    return info.value


def test_a_failed_result_raises_a_headline_and_keeps_its_msg():
    assert _failure.PRINTS_TWICE  # the pinned ansible-core 2.19
    result = {"failed": True, "msg": "Preflight refused wstu001-default: icc_gpu_count=5: use 1 to 4.", "rollout": {}}
    exc = raised(action(failure="the preflight stopped the run; nothing was changed"), result)
    assert exc.message == ("wstu001-default: the preflight stopped the run; nothing was changed "
                           "(why, and what to do: the msg below)")
    assert "icc_gpu_count" not in exc.message  # the reason is printed once: in the result
    assert exc.result["msg"] == result["msg"] and exc.result["failed"] is True and exc.result["rollout"] == {}
    assert not isinstance(exc, AnsibleActionFail)  # which would replace msg with the headline


def test_the_headline_names_the_namespace_option_else_the_host_else_the_task():
    assert raised(action({"namespace": "wcls002-default"}, failure="x"), {"failed": True}).message.startswith(
        "wcls002-default: x (")
    assert raised(action(name="Check the requested GPU count"), {"failed": True}).message.startswith(
        "wstu001-default: Check the requested GPU count (")
    what = action({"step": "wait"}, failure_what=lambda task_vars: "the engine did not become ready")
    assert "wstu001-default: the engine did not become ready (" in raised(what, {"failed": True}).message
    assert raised(action(failure="x"), {"failed": True}, {}).message == "x (why, and what to do: the msg below)"


@pytest.mark.parametrize("task", [dict(failed_when="false"), dict(until="r is succeeded"), dict(loop=[1, 2])])
def test_results_that_ansible_core_evaluates_further_are_returned(task):
    result = {"failed": True, "msg": "m"}
    assert _failure.once(action(**task), result, {}) is result


def test_a_good_result_and_older_ansible_core_lines_return_the_result(monkeypatch):
    assert _failure.once(action(), {"changed": True}, {}) == {"changed": True}
    monkeypatch.setattr(_failure, "PRINTS_TWICE", False)
    failed = {"failed": True, "msg": "m"}
    assert _failure.once(action(), failed, {}) is failed


def test_printed_once_turns_an_action_fail_into_the_same_failure():
    class Plugin(object):
        failure = "the plan failed"

        def __init__(self):
            self._task = action()._task

        @_failure.printed_once
        def run(self, tmp=None, task_vars=None):
            raise AnsibleActionFail("icc_engine=ollama: use vllm, tgi or llamacpp.", result={"engines": 3})

    with pytest.raises(AnsibleAction) as info:
        Plugin().run(task_vars={"inventory_hostname": "wstu001-default"})
    assert info.value.result["msg"] == "icc_engine=ollama: use vllm, tgi or llamacpp."
    assert info.value.result["engines"] == 3 and info.value.message.startswith("wstu001-default: the plan failed (")


def test_a_raised_failure_shows_its_warnings_and_deprecations_through_display(monkeypatch):
    """ansible-core reads them from a returned result only; raised, they would be lost."""
    shown = []

    class Recorder(object):
        def warning(self, text):
            shown.append(("warning", text))

        def deprecated(self, msg, version=None, date=None, collection_name=None):
            shown.append(("deprecated", msg, version, collection_name))

    monkeypatch.setattr(_failure, "Display", Recorder)
    result = {"failed": True, "msg": "m", "warnings": ["w1"],
              "deprecations": [{"msg": "api_key is deprecated", "version": "1.0.0", "collection_name": "haw_icc.llm"}]}
    exc = raised(action(failure="x"), result)
    assert shown == [("warning", "w1"), ("deprecated", "api_key is deprecated", "1.0.0", "haw_icc.llm")]
    assert "warnings" not in exc.result and "deprecations" not in exc.result
    assert result["warnings"] == ["w1"]  # the caller's dict is left alone
