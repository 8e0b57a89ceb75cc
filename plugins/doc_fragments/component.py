# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the role cores M(haw_icc.llm.llm_engine) and M(haw_icc.llm.llm_webui) share: the apply and
wait steps, and how they behave in check and diff mode."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  step:
    description:
      - V(all) applies the objects and then waits for the rollout; V(apply) only applies; V(wait) only
        waits for the rollout of what is applied (the role's C(wait_timeout) and C(unschedulable_grace)).
      - The roles run V(apply) and V(wait) as two tasks, so that a run over many namespaces applies every
        one of them before it waits for the first, and their pods start at the same time, not C(forks) at
        a time.
      - V(wait) is skipped (with the reason) when the role's state is C(absent), in check mode, and when the
        role's C(wait) is false.
    type: str
    choices: [all, apply, wait]
    default: all
  checksum:
    description:
      - With O(step=wait), the C(checksum) the apply step returned. When the Deployment carries another one
        once it is available, another run changed it meanwhile, and the wait fails saying so.
    type: str
attributes:
  check_mode:
    support: full
    description: A server-side dry run of every object; nothing changes, and the rollout is not waited for.
  diff_mode:
    support: full
    description: The objects before and after (a Secret's data is never shown).
"""
