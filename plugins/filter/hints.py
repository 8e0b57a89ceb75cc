# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``playbook_hint(host, playbook, inventory_sources, extra_vars=None)``: the command line that runs
one of the collection's playbooks for one namespace, as the user can paste it wherever the collection
is installed (``ansible-playbook -i <inventory> haw_icc.llm.<playbook> -l <namespace> [-e k=v]``)."""

from __future__ import annotations

import shlex

COLLECTION = "haw_icc.llm"


def playbook_hint(host, playbook, inventory_sources=None, extra_vars=None):
    """The summaries' hints. ``inventory_sources``: the run's ``ansible_inventory_sources`` (each
    becomes ``-i``); ``extra_vars``: a mapping of ``-e`` settings."""
    words = ["ansible-playbook"]
    sources = inventory_sources if isinstance(inventory_sources, (list, tuple)) else [inventory_sources]
    for source in sources:
        if source:
            words += ["-i", shlex.quote(str(source))]
    words += ["%s.%s" % (COLLECTION, playbook), "-l", shlex.quote(str(host))]
    for key, value in sorted((extra_vars or {}).items()):
        words += ["-e", shlex.quote("%s=%s" % (key, value))]
    return " ".join(words)


class FilterModule(object):
    def filters(self):
        return {"playbook_hint": playbook_hint}
