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
  - M(ansible.builtin.assert), whose O(fail_msg) is printed once (see the notes); the same options and result.
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.printed_once
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
