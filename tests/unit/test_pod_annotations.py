"""vllm_pod_annotations / tgi_pod_annotations: extra pod annotations, validated before anything is applied."""

from __future__ import annotations

import pytest

from ansible_collections.haw_icc.llm.plugins.module_utils import _engine

from test_engine import tgi_cfg, vllm_cfg


def test_annotations_reach_the_check_and_good_ones_pass():
    good = {"prometheus.io/scrape": "true", "example.com/team": "ml-lab", "note": "x",
            "sandbox.haw-icc.de/fault": "never-ready"}
    assert _engine.check("vllm", vllm_cfg(pod_annotations=good))["ok"]
    assert _engine.check("tgi", tgi_cfg(pod_annotations=good))["ok"]
    assert _engine.check("vllm", vllm_cfg(pod_annotations={}))["ok"]


@pytest.mark.parametrize("annotations,needle", [
    ("prometheus.io/scrape=true", "is not a dict"),
    ({"bad key": "x"}, "is not an annotation key"),
    ({"Not_A_Domain!/x": "x"}, "is not an annotation key"),
    ({"x" * 64: "x"}, "is not an annotation key"),
    ({"haw-icc.de/config-checksum": "x"}, "prefix the role sets itself"),
    ({"prometheus.io/port": 8000}, "the value is not a string"),
    ({"prometheus.io/scrape": True}, "'true'"),
])
def test_bad_annotations_are_refused_naming_the_variable(annotations, needle):
    for kind, cfg in (("vllm", vllm_cfg), ("tgi", tgi_cfg)):
        report = _engine.check(kind, cfg(pod_annotations=annotations))
        assert not report["ok"] and report["variables"] == ["%s_pod_annotations" % kind]
        assert needle in report["errors"][0], report["errors"]
