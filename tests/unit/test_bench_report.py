"""The pure parts of bench/report.py: medians, ratios, targets, the table rows of each benchmark and
the Markdown page. Runs no benchmark and starts nothing."""

from __future__ import annotations

import importlib.util
import math

import pytest

from sandboxlib import REPO


def load_report():
    spec = importlib.util.spec_from_file_location("bench_report", str(REPO / "bench" / "report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()

GPU = {"params": {"nodes": 200, "pods": 10000, "runs": 3},
       "module_wall_s": [1.9, 1.5, 2.2], "module_rss_mb": [70.0, 71.0, 69.0],
       "kubectl_wall_s": [9.0, 8.0, 10.0], "kubectl_rss_mb": [60.0, 61.0, 62.0]}
CLASS = {"params": {"class_size": 30, "runs": 3, "class_runs": 1},
         "runs": {"single": [20.0, 30.0, 25.0], "single_rerun": [10.0, 12.0, 11.0],
                  "single_rerun_changed": [0, 0, 0], "kubectl": [1.0, 0.5, 0.6],
                  "class": [90.0], "class_changed": [210], "class_rerun": [60.0], "class_rerun_changed": [0],
                  "status": [10.0], "cleanup": [20.0]}}


def health_run(completed, answered, tokens, usage, tps=20.0, base_tps=25.0):
    return {"llm_health": {"completed": completed, "output_tokens": tokens, "tokens_source": "chunks",
                           "output_tokens_per_s": tps, "requests_per_s": 2.0},
            "server_answered_load": answered,
            "baseline": {"server_completion_tokens": usage, "server_tokens_per_s": base_tps, "requests_per_s": 2.5}}


HEALTH = {"params": {"requests": 20, "concurrency": 4},
          "runs": [health_run(20, 20, 140, 140), health_run(20, 20, 140, 140, 30.0, 20.0), health_run(20, 20, 140, 140)]}


def by_measure(rows):
    return {r["measure"]: r for r in rows}


def test_median_ignores_missing_values_and_is_none_for_nothing():
    assert report.median([3, 1, 2]) == 2
    assert report.median([4, 1, None, 2, 3]) == 2.5
    assert report.median([]) is None and report.median([None]) is None


def test_ratio_and_targets():
    assert report.ratio(9.0, 3.0) == 3.0
    assert report.ratio(None, 3.0) is None and report.ratio(1.0, 0) is None and report.ratio(1.0, None) is None
    assert report.meets(2.9, "<", 3) is True and report.meets(3.0, "<", 3) is False
    assert report.meets(5.0, ">=", 5) is True and report.meets(None, "<=", 2) is None
    with pytest.raises(KeyError):
        report.meets(1, "~", 2)


def test_formatting():
    assert report.fmt(1.234, "s") == "1.23 s"
    assert report.fmt(0.82, "%") == "82 %"
    assert report.fmt(5.26, "x", 1) == "5.3x"
    assert report.fmt(70.4, "MB", 0) == "70 MB"
    assert report.fmt(None, "s") == "n/a"


def test_gpu_capacity_rows_use_medians_and_the_issue_targets():
    rows = by_measure(report.gpu_capacity_rows(GPU))
    wall = rows["gpu_capacity wall time, 200 nodes / 10000 pods"]
    assert wall["median"] == "1.90 s" and wall["baseline_median"] == "9.00 s" and wall["runs"] == 3
    assert wall["ratio"] == "4.7x faster" and wall["met"] is True
    speed = rows["gpu_capacity speed-up over `kubectl describe nodes`"]
    assert speed["median"] == "4.7x" and speed["target"] == ">= 5x" and speed["met"] is False
    rss = rows["gpu_capacity peak RSS, 200 nodes / 10000 pods"]
    assert rss["median"] == "70 MB" and rss["met"] is True


def test_class_rows_ratios_and_changed():
    rows = by_measure(report.class_rows(CLASS))
    single = rows["single deploy (1 namespace)"]
    assert single["median"] == "25.0 s" and single["baseline_median"] == "0.6 s"
    assert single["ratio"].startswith("41.67x") and single["met"] is False
    rerun = rows["single re-run"]
    assert rerun["ratio"] == "44 % of the first" and rerun["met"] is True
    klass = rows["30 namespaces deploy"]
    assert klass["ratio"] == "3.60x single" and klass["met"] is True
    assert rows["30 namespaces re-run"]["ratio"] == "67 % of the first" and rows["30 namespaces re-run"]["met"] is False
    assert rows["30 namespaces status"]["met"] is None


def test_targets_set_for_a_size_are_not_judged_at_another_size():
    small = dict(GPU, params={"nodes": 40, "pods": 2000, "runs": 3})
    for r in report.gpu_capacity_rows(small):
        assert r["met"] is None and r["note"] == "not judged: the target is for 200 nodes / 10000 pods", r
    klass = by_measure(report.class_rows({"params": dict(CLASS["params"], class_size=3), "runs": CLASS["runs"]}))
    assert klass["3 namespaces deploy"]["met"] is None
    assert klass["3 namespaces deploy"]["note"] == "changed=[210]; not judged: the target is for 30 namespaces"
    assert klass["single deploy (1 namespace)"]["met"] is False  # a single deploy is the same at any size


def test_a_rerun_that_changed_something_misses_its_target_however_fast():
    data = {"params": dict(CLASS["params"]), "runs": dict(CLASS["runs"], single_rerun_changed=[0, 2, 0])}
    assert by_measure(report.class_rows(data))["single re-run"]["met"] is False


def test_llm_health_rows_compare_with_the_servers_counts():
    rows = by_measure(report.llm_health_rows(HEALTH))
    requests = rows["llm_health load: requests completed (20 requests, concurrency 4)"]
    assert requests["median"] == "20" and requests["baseline_median"] == "20" and requests["met"] is True
    tokens = rows["llm_health load: output tokens (counted from chunks)"]
    assert tokens["ratio"] == "1.00" and tokens["met"] is True
    tps = rows["llm_health load: output tokens/s"]
    assert tps["median"] == "20.0" and tps["baseline_median"] == "25.0" and tps["ratio"] == "0.80" and tps["met"] is None


def test_one_run_with_a_different_count_is_missed_even_if_the_medians_agree():
    runs = HEALTH["runs"][:2] + [health_run(19, 20, 133, 140)]
    rows = by_measure(report.llm_health_rows({"params": HEALTH["params"], "runs": runs}))
    assert rows["llm_health load: requests completed (20 requests, concurrency 4)"]["median"] == "20"
    assert rows["llm_health load: requests completed (20 requests, concurrency 4)"]["met"] is False
    assert rows["llm_health load: output tokens (counted from chunks)"]["met"] is False


def test_markdown_table_escapes_pipes_and_marks_misses():
    table = report.markdown_table([report.row("a | b", 1.0, "s", 3, "base", 2.0, "0.50x", "<= 1x", False)])
    lines = table.splitlines()
    assert lines[0].startswith("| measure | median | runs |") and len(lines) == 3
    assert lines[2] == "| a \\| b | 1.00 s | 3 | base | 2.00 s | 0.50x | <= 1x | **missed** |  |"


def page(quick, errors=None):
    data = {"gpu_capacity": GPU, "class": CLASS, "llm_health": HEALTH}
    rep = {"quick": quick, "data": data, "errors": errors or {}, "params": {"gpu_capacity": GPU["params"]},
           "facts": {"date": "2026-11-29 06:00 UTC", "git commit": "abc1234", "nproc": 2,
                     "load average at start": "1.00 2.00 3.00", "mode": "full"}}
    return report.render(report.build_rows(rep), plots=["bench_class.png"])


def test_the_page_has_every_row_the_machine_and_the_plots():
    text = page(quick=False)
    assert text.startswith("# Benchmarks\n") and "QUICK" not in text
    assert text.count("\n| gpu_capacity") == 3 and "| single deploy (1 namespace) |" in text
    assert "| llm_health load: output tokens/s |" in text
    met = sum(1 for r in report.class_rows(CLASS) + report.gpu_capacity_rows(GPU) + report.llm_health_rows(HEALTH)
              if r["met"])
    assert "Targets met: %d of 9." % met in text
    assert "| nproc | 2 |" in text and "| git commit | abc1234 |" in text and "| load average at end | n/a |" in text
    assert "![bench_class](images/bench_class.png)" in text
    assert "- gpu_capacity: nodes=200, pods=10000, runs=3" in text


def test_a_quick_page_says_so_and_failures_are_listed():
    text = page(quick=True, errors={"class": "class_bench.py exited with 1"})
    assert text.startswith("# Benchmarks (QUICK RUN")
    assert "not the real figures" in text.splitlines()[0]
    assert "- class: class_bench.py exited with 1" in text


def test_nan_free_ratios_for_empty_class_runs():
    data = {"params": dict(CLASS["params"]), "runs": dict(CLASS["runs"], **{k: [] for k in (
        "class", "class_changed", "class_rerun", "class_rerun_changed", "status", "cleanup")})}
    rows = report.class_rows(data)
    assert [r["measure"] for r in rows] == ["single deploy (1 namespace)", "single re-run"]
    assert not any(isinstance(v, float) and math.isnan(v) for r in rows for v in r.values())
