# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible.builtin modules whose failure the collection prints once (haw_icc.llm.fail, assert)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options: {}
notes:
  - ansible-core 2.19 and later print a failed task twice in the default callback, as an C([ERROR]) block and
    in the C(fatal) result. With this module the C([ERROR]) block is a headline that names the host and the
    task, and the message is printed once, in the result's C(msg), which a registered result and C(rescue)
    read as with the ansible.builtin module.
  - Runs on the controller (an action plugin, no module process).
attributes:
  check_mode:
    support: full
    description: It only evaluates, so it runs the same in check mode and returns C(changed=false).
  diff_mode:
    support: N/A
    description: It changes nothing, so there is no diff.
"""
