# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of gpu_monitor: the tidy CSV, the summary, a self-contained HTML page with inline SVG
panels, and a PNG when matplotlib is importable. Pure (only files are written); the samples and
the summary come from ``_gpu_monitor``."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os

from ansible_collections.haw_icc.llm.plugins.module_utils._gpu_monitor import (
    COLUMNS,
    ENGINE_SUMMARY,
    _fmt,
    file_stamp,
    summarize,
    summary_lines,
)

# ---------------------------------------------------------------------------------------------
# Files


def write_csv(rows, path):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(dict((k, _cell(v)) for k, v in row.items()))
    _write(path, buf.getvalue())


def _cell(value):
    """Plain CSV cell: empty for no value, whole numbers without .0."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _write(path, text, mode="w"):
    tmp = path + ".tmp"
    with open(tmp, mode) as handle:
        handle.write(text)
    os.replace(tmp, path)


# Panels of the pictures: (title, column, unit, fixed y range or None).
PANELS = [
    ("GPU utilisation", "gpu_utilization_pct", "%", (0, 100)),
    ("GPU memory used", "memory_used_mib", "MiB", None),
    ("Temperature", "temperature_c", "\u00b0C", None),
    ("Power draw", "power_draw_w", "W", None),
    ("Tokens generated per second (engine)", "generation_tokens_per_s", "tokens/s", None),
]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def _series(rows, column):
    """[(label, [(elapsed, value or None)])]: one series per GPU, one for engine columns."""
    if column in ENGINE_SUMMARY:
        seen = {}
        for r in rows:
            seen.setdefault(r["sample"], (r["elapsed_s"], r[column]))
        return [("engine", [seen[k] for k in sorted(seen)])]
    out = {}
    names = {}
    for r in rows:
        if r.get("gpu_index") is None:
            continue
        out.setdefault(r["gpu_index"], []).append((r["elapsed_s"], r[column]))
        names[r["gpu_index"]] = r["gpu_name"]
    return [("GPU %s" % k, out[k]) for k in sorted(out)]


# Which chart shows which throttle reason (at the GPU's value in that chart).
THROTTLE_PANEL = {"sw_power_cap": "power_draw_w", "hw_power_brake_slowdown": "power_draw_w",
                  "sw_thermal_slowdown": "temperature_c", "hw_thermal_slowdown": "temperature_c",
                  "hw_slowdown": "gpu_utilization_pct", "sync_boost": "gpu_utilization_pct"}


def _throttle_points(rows, column):
    """[(elapsed, value, reason)] of GPU samples throttled for a reason shown in this chart."""
    points = []
    for r in rows:
        for reason in (r.get("throttle_reasons") or "").split():
            target = THROTTLE_PANEL.get(reason, "gpu_utilization_pct")
            if r.get(target) is None:  # no reading in that chart: show it with the utilisation
                target = "gpu_utilization_pct"
            if target == column and r.get(column) is not None:
                points.append((r["elapsed_s"], r[column], reason))
    return points


def _nice_range(lo, hi):
    if lo is None:
        return 0.0, 1.0
    if hi - lo < 1e-9:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    lo2 = 0.0 if lo >= 0 and lo - pad < 0 else lo - pad
    return lo2, hi + pad


def _ticks(lo, hi, n=5):
    span = hi - lo
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag * 10)
    first = math.ceil(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def svg_panel(title, unit, series, x_max, fixed=None, width=900, height=190, note=None, marks=None):
    """One time-series chart as an SVG string: lines per series, gaps where values are missing."""
    left, right, top, bottom = 70, 165, 30, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _l, pts in series for _x, v in pts if v is not None]
    if fixed:
        lo, hi = fixed
    else:
        lo, hi = _nice_range(min(values) if values else None, max(values) if values else None)
    x_max = x_max or 1.0

    def px(x):
        return left + plot_w * (x / x_max)

    def py(y):
        return top + plot_h * (1 - (y - lo) / (hi - lo))
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'role="img" aria-label="%s">' % (width, height, width, height, _esc(title)),
             '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (width, height),
             '<text x="%d" y="18" font-size="14" font-weight="bold" fill="#222">%s (%s)</text>'
             % (left, _esc(title), _esc(unit))]
    for t in _ticks(lo, hi):
        y = py(t)
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>' % (left, left + plot_w, y, y))
        parts.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%s</text>'
                     % (left - 6, y + 4, _esc(_fmt(float(t)))))
    for t in _ticks(0, x_max):
        x = px(t)
        parts.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#f0f0f0"/>' % (x, x, top, top + plot_h))
        parts.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>'
                     % (x, top + plot_h + 15, _esc(_fmt(float(t)))))
    parts.append('<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#444">seconds since start</text>'
                 % (left + plot_w // 2, height - 4))
    parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
                 % (left, top, plot_w, plot_h))
    if not values:
        parts.append('<text x="%d" y="%d" font-size="13" text-anchor="middle" fill="#888">%s</text>'
                     % (left + plot_w // 2, top + plot_h // 2, _esc(note or "no data")))
    for i, (label, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        segments, current = [], []
        for x, v in pts:
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append((px(x), py(max(lo, min(hi, v)))))
        if current:
            segments.append(current)
        for seg in segments:
            if len(seg) == 1:
                parts.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (seg[0][0], seg[0][1], color))
            else:
                parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                             % (color, " ".join("%.1f,%.1f" % p for p in seg)))
        if values:
            label = _label(label, pts)
            ly = top + 14 + 16 * i
            parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                         % (left + plot_w + 10, left + plot_w + 28, ly - 4, ly - 4, color))
            parts.append('<text x="%d" y="%d" font-size="12" fill="#222">%s</text>'
                         % (left + plot_w + 32, ly, _esc(label)))
    if marks:
        for x, v, _reason in marks:
            cx, cy = px(x), py(max(lo, min(hi, v)))
            parts.append('<path d="M%.1f %.1f l-5 -9 h10 z" fill="#e00000"/>' % (cx, cy - 3))
        ly = top + 14 + 16 * len(series)
        reasons = sorted(set(r for _x, _v, r in marks))
        parts.append('<path d="M%d %d l-5 -9 h10 z" fill="#e00000"/>' % (left + plot_w + 19, ly))
        parts.append('<text x="%d" y="%d" font-size="12" fill="#222">throttled:</text>' % (left + plot_w + 32, ly))
        for j, reason in enumerate(reasons):
            parts.append('<text x="%d" y="%d" font-size="11" fill="#222">%s</text>'
                         % (left + plot_w + 32, ly + 14 * (j + 1), _esc(reason)))
    parts.append("</svg>")
    return "\n".join(parts)


def _title(summary):
    started = (summary["started"] or "?")[:19].replace("T", " ")
    seconds = ""
    if summary["started"] and summary["finished"]:
        first = datetime.datetime.fromisoformat(summary["started"])
        last = datetime.datetime.fromisoformat(summary["finished"])
        seconds = ", %d s" % round((last - first).total_seconds())
    return "GPU monitor of %s (pod %s): %s UTC%s, %d samples" % (
        summary["namespace"], ", ".join(summary["pods"]) or "-", started, seconds, summary["samples"])


def _label(label, pts):
    return label if any(v is not None for _x, v in pts) else label + ": no reading"


def _panel_series(rows, column):
    series = _series(rows, column)
    if column == "memory_used_mib":
        totals = {}
        for r in rows:
            if r.get("gpu_index") is not None and r.get("memory_total_mib"):
                totals[r["gpu_index"]] = r["memory_total_mib"]
        if totals:
            return series, max(totals.values())
    return series, None


def write_html(rows, summary, path):
    x_max = max([r["elapsed_s"] for r in rows] or [1.0]) or 1.0
    panels = []
    for title, column, unit, fixed in PANELS:
        series, total = _panel_series(rows, column)
        if total:
            fixed = (0, total)
            title = "%s, total %s" % (title, _fmt(total))
        note = None
        if column in ENGINE_SUMMARY:
            note = "engine metrics: %s" % summary["engine"]["metrics"]
        panels.append(svg_panel(title, unit, series, x_max, fixed, note=note,
                                marks=_throttle_points(rows, column)))
    lines = summary_lines(summary)
    html = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            "<title>%s</title>" % _esc(_title(summary)),
            "<style>body{font-family:sans-serif;margin:16px;color:#222}svg{display:block;margin:6px 0}"
            "pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}</style></head><body>",
            "<h1 style=\"font-size:18px\">%s</h1>" % _esc(_title(summary)),
            "<pre>%s</pre>" % _esc("\n".join(lines))]
    html.extend(panels)
    html.append("<p style=\"font-size:12px;color:#666\">One line per GPU (nvidia-smi in pod %s, every sample); "
                "tokens per second from the engine's /metrics counters. Gaps: no value in that sample.</p>"
                % _esc(", ".join(summary["pods"]) or "-"))
    html.append("</body></html>")
    _write(path, "\n".join(html) + "\n")


def png_available():
    try:
        import matplotlib  # noqa: F401  pylint: disable=unused-import
    except ImportError:
        return False
    return True


def write_png(rows, summary, path):
    """Five stacked time series as a PNG (needs matplotlib; returns False without it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(9, 11), sharex=True, dpi=80)
    for ax, (title, column, unit, fixed) in zip(axes, PANELS):
        series, total = _panel_series(rows, column)
        drawn = False
        for i, (label, pts) in enumerate(series):
            xs = [x for x, _v in pts]
            ys = [float("nan") if v is None else v for _x, v in pts]
            if any(v is not None for _x, v in pts):
                drawn = True
            ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.6,
                    color=COLORS[i % len(COLORS)], label=_label(label, pts))
        if total:
            ax.set_ylim(0, total * 1.02)
            ax.axhline(total, color="#999", linestyle="--", linewidth=1)
            title = "%s, total %s MiB" % (title, _fmt(total))
        elif fixed:
            ax.set_ylim(*fixed)
        marks = _throttle_points(rows, column)
        if marks:
            ax.scatter([m[0] for m in marks], [m[1] for m in marks], marker="v", s=45, color="#e00000", zorder=5,
                       label="throttled: %s" % ", ".join(sorted(set(m[2] for m in marks))))
        ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
        ax.set_ylabel(unit)
        ax.grid(True, color="#e4e4e4")
        if drawn:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
        else:
            note = "no data"
            if column in ENGINE_SUMMARY:
                note = "engine metrics: %s" % summary["engine"]["metrics"]
            ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="#888")
    axes[-1].set_xlabel("seconds since start")
    fig.suptitle(_title(summary), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def write_outputs(monitor, dest, stamp_ts, formats, write=True):
    """Write the files; returns (summary, files dict)."""
    base = "gpu-monitor_%s_%s" % (monitor.namespace, file_stamp(stamp_ts))
    files = {}
    paths = {"csv": base + ".csv", "summary": base + ".summary.json", "html": base + ".html",
             "png": base + ".png"}
    wanted = [f for f in ("csv", "summary", "html", "png") if f in formats]
    if "png" in wanted and not png_available():
        wanted.remove("png")
        monitor.errors.append("PNG not written: matplotlib is not installed for the Python that runs "
                              "Ansible modules (the HTML page has the same charts).")
    for fmt in wanted:
        files[fmt] = os.path.join(dest, paths[fmt])
    summary = summarize(monitor, files)
    if not write:
        return summary, files
    if not os.path.isdir(dest):
        os.makedirs(dest)
    if "csv" in files:
        write_csv(monitor.rows, files["csv"])
    if "html" in files:
        write_html(monitor.rows, summary, files["html"])
    if "png" in files:
        write_png(monitor.rows, summary, files["png"])
    if "summary" in files:
        _write(files["summary"], json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary, files
