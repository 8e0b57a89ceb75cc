# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_logs_info: the module runs as a module process, as without this plugin;
a failure prints its reason once (plugin_utils/_failure.py)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.plugin_utils._failure import ModuleAction


class ActionModule(ModuleAction):
    failure = "the logs could not be read"
