# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.fail: ansible.builtin.fail, whose message prints once
(plugin_utils/_failure.py). The playbooks of the collection fail through it."""

from __future__ import annotations

from ansible.plugins.action.fail import ActionModule as _Fail

from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once


class ActionModule(_Fail):
    run = printed_once(_Fail.run)
