# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of haw_icc.llm.llm_health: the module's logic (``module_utils/_llm_health.run``)
on the controller, so that a long wait (``wait_timeout``: an image pull, a model download, a model
load) prints a line about every 15 s: the elapsed time and why the model does not answer yet. With
``async``, the module runs as a module process as usual (no progress lines)."""

from __future__ import annotations

import time

from ansible.utils.display import Display

from ansible_collections.haw_icc.llm.plugins.module_utils import _llm_health
from ansible_collections.haw_icc.llm.plugins.module_utils._rollout import elapsed_text
from ansible_collections.haw_icc.llm.plugins.plugin_utils._component import PROGRESS_EVERY
from ansible_collections.haw_icc.llm.plugins.plugin_utils._inprocess import InProcessAction

display = Display()


class ActionModule(InProcessAction):
    task = _llm_health
    failure = "the model did not answer"

    def callbacks(self, where):
        last = {"shown": time.monotonic()}

        def on_retry(elapsed, exc):
            if time.monotonic() - last["shown"] < PROGRESS_EVERY:
                return
            last["shown"] = time.monotonic()
            reason = (exc.message or "").splitlines()[0][:160] if getattr(exc, "message", None) else str(exc)[:160]
            display.display("%s: %s waiting for the model to answer (%s)" % (where, elapsed_text(elapsed), reason))

        return {"on_retry": on_retry}
