#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: assert
short_description: Check expressions, with a failure message that is printed once
version_added: 0.2.0
description:
  - M(ansible.builtin.assert), except for the output. ansible-core 2.19 and later print a failed task twice in
    the default callback, as an C([ERROR]) block and in the C(fatal) result; with this module the C([ERROR])
    block names the host and the task, and O(fail_msg) is printed once, in the result's C(msg).
  - The options and the result are those of M(ansible.builtin.assert).
  - Runs on the controller (an action plugin, no module process).
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.attributes.INFO_MODULE
options:
  that:
    description: Conditionals, as in a C(when) statement; all must be true.
    type: list
    elements: str
    required: true
  fail_msg:
    description: The message of a failed assertion.
    type: str
    aliases: [msg]
  success_msg:
    description: The message of a passed assertion.
    type: str
  quiet:
    description: Print nothing when the assertion passes.
    type: bool
    default: false
seealso:
  - module: ansible.builtin.assert
  - module: haw_icc.llm.fail
"""

EXAMPLES = r"""
- name: Check the requested GPU count
  haw_icc.llm.assert:
    that: (gpu_count | string) is match('^[1-4]$')
    fail_msg: "gpu_count={{ gpu_count }}: use 1 to 4, e.g. -e gpu_count=2. Nothing was changed."
    quiet: true
"""

RETURN = r"""
msg:
  description: O(fail_msg) when an assertion failed, else O(success_msg).
  returned: always
  type: str
"""
