# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.gpu_monitor_sample: the module's logic
(``module_utils/_gpu_monitor_task.run``) on the controller, printing one compact line per sample
while it samples (utilisation, memory, power and temperature per GPU, the engine's tokens/s), as
the original scripts' terminal monitor did. With ``async``, the module runs as a module process."""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.haw_icc.llm.plugins.module_utils import _gpu_monitor, _gpu_monitor_task
from ansible_collections.haw_icc.llm.plugins.plugin_utils._inprocess import InProcessAction

display = Display()


class ActionModule(InProcessAction):
    task = _gpu_monitor_task
    failure = "the GPU monitor could not sample"

    def callbacks(self, where):
        def on_sample(index, total, rows):
            display.display("%s: %s" % (where, _gpu_monitor.sample_line(index, total, rows)))

        return {"on_sample": on_sample}
