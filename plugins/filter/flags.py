# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``flag_problems(flags)``: of a dict of true/false flags as the user wrote them (``confirm``,
``purge``), the ``name=value`` of each that is neither true nor false (module_utils/_cleanup.py)."""

from __future__ import annotations

from ansible_collections.haw_icc.llm.plugins.module_utils._cleanup import flag_problems as _flag_problems
from ansible_collections.haw_icc.llm.plugins.module_utils._text import plain


def flag_problems(flags):
    return _flag_problems(plain(flags))


class FilterModule(object):
    def filters(self):
        return {"flag_problems": flag_problems}
