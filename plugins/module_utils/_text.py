# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small text helpers for the collection's reports."""

from __future__ import annotations


def truncate(text, length=255, end="...", leeway=5):
    """Like Jinja's ``truncate``: keep ``text`` when it is at most ``length`` (+ ``leeway``) long,
    else cut it at the last word that fits and add ``end``."""
    text = str(text)
    if len(text) <= length + leeway:
        return text
    cut = text[:length - len(end)]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut + end


def plain(value):
    """Template results may be lazy Ansible containers; give the pure code plain types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
