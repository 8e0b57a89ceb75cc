# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reusable ``attributes`` blocks."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options: {}
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs fully in check mode and always returns C(changed=false).
  diff_mode:
    support: N/A
    description: The module changes nothing, so there is no diff.
"""
