"""The summaries' hints (plugins/filter/hints.py playbook_hint): a command line that runs wherever the
collection is installed."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.filter.hints import playbook_hint


def test_a_hint_names_the_inventory_the_collection_playbook_and_the_namespace():
    assert playbook_hint("w123456-default", "access", ["/home/s/my-icc"]) == (
        "ansible-playbook -i /home/s/my-icc haw_icc.llm.access -l w123456-default")


def test_extra_vars_and_odd_paths_are_quoted():
    hint = playbook_hint("wstu001-default", "access", ["/tmp/my icc/hosts.yml", "/tmp/b"], {"state": "absent"})
    assert hint == ("ansible-playbook -i '/tmp/my icc/hosts.yml' -i /tmp/b haw_icc.llm.access -l wstu001-default "
                    "-e state=absent")
    assert playbook_hint("ns", "status", None) == "ansible-playbook haw_icc.llm.status -l ns"
