# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.gpu_monitor_sample: the module's logic
(``module_utils/_gpu_monitor_task.run``) on the controller, printing one compact line per sample
while it samples (utilisation, memory, power and temperature per GPU, the engine's tokens/s), as
the original scripts' terminal monitor did. With ``async``, the module runs as a module process."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor, _gpu_monitor_task
from ansible_collections.haw_icc.llm.plugins.plugin_utils import _inprocess

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        if self._task.async_val:
            result.update(self._execute_module(task_vars=task_vars,
                                               wrap_async=not self._connection.has_native_async))
            return result
        where = self._task.args.get("namespace") or task_vars.get("inventory_hostname")

        def on_sample(index, total, rows):
            display.display("%s: %s" % (where, _gpu_monitor.sample_line(index, total, rows)))

        result.update(_inprocess.run(self, _gpu_monitor_task.argument_spec(), _gpu_monitor_task.RULES,
                                     _gpu_monitor_task.run, on_sample=on_sample))
        return result
