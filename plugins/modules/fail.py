#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fail
short_description: Fail with a message that is printed once
version_added: 0.2.0
description:
  - M(ansible.builtin.fail), whose message is printed once (see the notes).
author:
  - haw_icc.llm contributors (!UNKNOWN)
extends_documentation_fragment:
  - haw_icc.llm.printed_once
options:
  msg:
    description: The message of the failure.
    type: str
    default: Failed as requested from task
seealso:
  - module: ansible.builtin.fail
  - module: haw_icc.llm.assert
"""

EXAMPLES = r"""
- name: Refuse a namespace that is not a student's
  haw_icc.llm.fail:
    msg: "icc_namespace={{ icc_namespace }}: use your own namespace, w<id>-default. Nothing was changed."
  when: icc_namespace is not match('^w[a-z0-9]+-default$')
"""

RETURN = r"""
msg:
  description: The message.
  returned: always
  type: str
"""
