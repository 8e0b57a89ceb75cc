# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.assert: ansible.builtin.assert, whose fail_msg prints once
(plugin_utils/_failure.py). The playbooks of the collection check their inputs through it."""

from __future__ import annotations

import importlib

from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import printed_once

_Assert = importlib.import_module("ansible.plugins.action.assert").ActionModule  # "assert" is a keyword


class ActionModule(_Assert):
    run = printed_once(_Assert.run)
