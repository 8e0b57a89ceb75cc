"""Pure logic of llm_health: SSE parsing, stream figures, /metrics parsing, percentiles, waiting."""

from __future__ import annotations

import itertools
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError
from ansible_collections.haw_icc.llm.plugins.module_utils._health import percentile, summarize_load, wait_for
from ansible_collections.haw_icc.llm.plugins.module_utils._metrics import parse_prometheus, summarize
from ansible_collections.haw_icc.llm.plugins.module_utils._openai import iter_sse, parse_stream
from ansible_collections.haw_icc.llm.plugins.modules import llm_health


def chunk(content=None, finish=None, usage=None, role=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    event = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        event = {"object": "chat.completion.chunk", "choices": [], "usage": usage}
    return "data: %s\n\n" % json.dumps(event)


def lines(text):
    return [line + "\n" for line in text.split("\n")]


def test_iter_sse_handles_comments_multiline_and_crlf():
    text = ": keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata:c\n\ndata: tail"
    assert list(iter_sse(lines(text))) == ["a\nb", "c", "tail"]
    assert list(iter_sse([b"data: x\n", b"\n"])) == ["x"]


def clock():
    counter = itertools.count()
    return lambda: float(next(counter))


def test_stream_counts_chunks_without_usage():
    text = chunk(role="assistant") + chunk("Ber") + chunk("lin") + chunk("", finish="stop") + "data: [DONE]\n\n"
    out = parse_stream(iter_sse(lines(text)), 0.0, clock=clock())
    assert out["text"] == "Berlin" and out["tokens"] == 2 and out["tokens_source"] == "chunks"
    assert out["ttft_s"] == 0.0 and out["finish_reason"] == "stop"
    assert out["tokens_per_s"] == 1.0   # (2-1) tokens over 1 s between first and last token


def test_stream_prefers_usage():
    text = (chunk("a") + chunk("b") + chunk("", finish="length")
            + chunk(usage={"prompt_tokens": 3, "completion_tokens": 5}) + "data: [DONE]\n\n")
    out = parse_stream(iter_sse(lines(text)), 0.0, clock=clock())
    assert out["tokens"] == 5 and out["tokens_source"] == "usage"


@pytest.mark.parametrize("text,needle", [
    (chunk("a") + chunk("b"), "no finish_reason and no [DONE]"),
    (chunk(role="assistant") + "data: [DONE]\n\n", "the server aborted the request"),
    ("data: {not json\n\n", "not JSON"),
    ('data: {"error": {"message": "boom"}}\n\n', "boom"),
])
def test_stream_errors(text, needle):
    with pytest.raises(ProbeError) as err:
        parse_stream(iter_sse(lines(text)), 0.0, clock=clock())
    assert needle in str(err.value)


VLLM_V0 = """
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2.0
vllm:num_requests_waiting{model_name="m"} 1.0
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
vllm:prompt_tokens_total{model_name="m"} 100.0
vllm:generation_tokens_total{model_name="m"} 400.0
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 3.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 0.6
vllm:time_to_first_token_seconds_count{model_name="m"} 3.0
"""
VLLM_V1 = 'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5\nvllm:num_requests_running{engine="0"} 0\n'
TGI = """
tgi_queue_size 4
tgi_batch_current_size 3
tgi_request_count{method="POST"} 10
tgi_request_success 9
tgi_request_generated_tokens_sum 90
tgi_request_generated_tokens_count 9
"""


def test_vllm_v0_metrics():
    out = summarize(parse_prometheus(VLLM_V0))
    assert out["engine"] == "vllm" and out["requests_running"] == 2 and out["requests_waiting"] == 1
    assert out["kv_cache_usage"] == 0.25 and out["kv_cache_usage_metric"] == "vllm:gpu_cache_usage_perc"
    assert out["generation_tokens_total"] == 400 and out["time_to_first_token_mean_s"] == pytest.approx(0.2)
    assert "vllm:time_to_first_token_seconds_bucket" not in out["raw"]


def test_vllm_v1_kv_cache_name():
    out = summarize(parse_prometheus(VLLM_V1))
    assert out["kv_cache_usage"] == 0.5 and out["kv_cache_usage_metric"] == "vllm:kv_cache_usage_perc"


def test_tgi_metrics():
    out = summarize(parse_prometheus(TGI))
    assert out["engine"] == "tgi" and out["requests_waiting"] == 4 and out["requests_running"] == 3
    assert out["requests_total"] == 10 and out["generated_tokens_mean"] == 10


def test_prometheus_labels_and_junk():
    samples = parse_prometheus('a{x="1",y="q\\"uote"} 2\nnot a metric line\nb NaN\nc 1 1700000000\n')
    assert samples["a"] == [({"x": "1", "y": 'q"uote'}, 2.0)] and samples["c"] == [({}, 1.0)]
    assert summarize(parse_prometheus(""))["engine"] == "unknown"


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_summarize_load():
    recs = [dict(total_s=t, ttft_s=t / 10, tokens=10, tokens_source="chunks") for t in (1.0, 2.0, 3.0)]
    out = summarize_load(recs, ["x"], 2.0, 4, 2)
    assert out["completed"] == 3 and out["failed"] == 1 and out["output_tokens"] == 30
    assert out["output_tokens_per_s"] == 15 and out["requests_per_s"] == 1.5
    assert out["latency_s"] == {"p50": 2.0, "p95": 2.9, "max": 3.0}


def test_wait_for_retries_until_success_and_reports_last_error():
    now = [0.0]
    calls = []

    def attempt():
        calls.append(now[0])
        if len(calls) < 3:
            raise ProbeError("not yet %d" % len(calls))
        return {}

    out = wait_for(attempt, 100, 5, clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert out["attempts"] == 3 and out["elapsed"] == 10.0

    calls.clear()
    now[0] = 0.0

    def never():
        calls.append(1)
        raise ProbeError("still loading")

    with pytest.raises(ProbeError) as err:
        wait_for(never, 12, 5, clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s))
    assert err.value.details["attempts"] == 3 and err.value.details["elapsed"] == 10.0
    assert "Still failing after 10.0s (3 attempts): still loading" in str(err.value)


def test_wait_for_tells_on_retry_of_each_failed_attempt_it_retries():
    now = [0.0]
    told = []

    def never():
        raise ProbeError("still loading")

    with pytest.raises(ProbeError):
        wait_for(never, 12, 5, clock=lambda: now[0], pause=lambda s: now.__setitem__(0, now[0] + s),
                 on_retry=lambda elapsed, exc: told.append((elapsed, exc.message)))
    # attempts at 0, 5 and 10 s; the last is not retried (10 + 5 > 12), so it is not told
    assert told == [(0.0, "still loading"), (5.0, "still loading")]


def run_main(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            llm_health.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args,needle", [
    ({"base_url": "http://127.0.0.1:1", "requests": -1}, "requests=-1"),
    ({"base_url": "http://127.0.0.1:1", "concurrency": 0}, "concurrency=0"),
    ({"base_url": "ftp://x"}, "not an http(s) URL"),
    ({}, "one of the following is required"),
    ({"base_url": "http://x", "service": "y"}, "mutually exclusive"),
])
def test_main_refuses_bad_input(args, needle, capsys):
    out = run_main(args, capsys)
    assert out["failed"] and needle in out["msg"]
