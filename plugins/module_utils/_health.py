# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of ``llm_health``: layered checks of an OpenAI-compatible server, waiting, and load."""

from __future__ import annotations

import threading
import time

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError
from ansible_collections.haw_icc.llm.plugins.module_utils._metrics import parse_prometheus, summarize


def percentile(values, q):
    """Linear-interpolated percentile (like numpy's default) of a non-empty list; None if empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _r(value, digits=4):
    return None if value is None else round(value, digits)


class Probe(object):
    """Runs the checks in order, recording each in ``checks``, so that a failure or a timeout
    still shows how far the server got."""

    def __init__(self, client, model=None, question="Hi", max_tokens=32, stream=True, metrics=False):
        self.client = client
        self.model = model
        self.question = question
        self.max_tokens = max_tokens
        self.stream = stream
        self.metrics = metrics
        self.checks = []

    def _record(self, name, status, latency=None, **detail):
        entry = dict(name=name, ok=status in ("ok", "absent", "skipped"), status=status, latency_s=_r(latency))
        entry.update(detail)
        self.checks.append(entry)
        return entry

    def _step(self, name, func):
        start = time.monotonic()
        try:
            return func()
        except ProbeError as exc:
            self._record(name, "failed", time.monotonic() - start, error=str(exc))
            raise

    def run(self):
        result = dict(server={})
        start = time.monotonic()
        health = self._step("health", lambda: self.client.optional("/health"))
        self._record("health", "ok" if health is not None else "absent", time.monotonic() - start)
        for path, key in (("/version", "version"), ("/info", "info")):
            start = time.monotonic()
            resp = self._step(key, lambda p=path: self.client.optional(p))
            if resp is None:
                self._record(key, "absent", time.monotonic() - start)
                continue
            try:
                result["server"][key] = resp.json("GET %s" % path)
            except ProbeError:
                result["server"][key] = resp.body[:200].decode("utf-8", "replace")
            self._record(key, "ok", resp.elapsed)

        models, latency = self._step("models", self.client.models)
        model = self.model
        if model is None:
            if not models:
                self._record("models", "failed", latency, error="no model listed")
                raise ProbeError("The server lists no model in /v1/models.",
                                 "The model is probably still loading; use wait_timeout.")
            model = models[0]
        elif model not in models:
            self._record("models", "failed", latency, error="%s not listed" % model)
            raise ProbeError("The server does not serve %r; it lists %s." % (model, models),
                             "Deploy that model, or set model to one of the listed names.")
        self._record("models", "ok", latency, models=models)

        answer, usage, latency = self._step("chat", lambda: self.client.chat(model, self.question, self.max_tokens))
        if not (answer or "").strip():
            self._record("chat", "failed", latency, error="empty answer")
            raise ProbeError("The model %r answered with empty text." % model,
                             "Look at the engine's logs; the model may be broken or max_tokens too small.")
        self._record("chat", "ok", latency)
        result.update(model=model, models=models, answer=answer, usage=usage)

        if self.stream:
            figures = self._step("stream", lambda: self.client.stream_chat(model, self.question, self.max_tokens))
            if not figures["text"].strip():
                self._record("stream", "failed", figures["total_s"], error="empty streamed answer")
                raise ProbeError("The streamed completion of %r had no text." % model)
            self._record("stream", "ok", figures["total_s"])
            result["stream"] = dict((k, _r(v) if isinstance(v, float) else v) for k, v in figures.items()
                                    if k != "usage")
        else:
            self._record("stream", "skipped")

        if self.metrics:
            start = time.monotonic()
            resp = self._step("metrics", lambda: self.client.optional("/metrics"))
            if resp is None:
                self._record("metrics", "absent", time.monotonic() - start)
                result["metrics"] = {}
            else:
                result["metrics"] = summarize(parse_prometheus(resp.body.decode("utf-8", "replace")))
                self._record("metrics", "ok", resp.elapsed)
        result["checks"] = self.checks
        return result


def wait_for(attempt, wait_timeout, sleep, clock=time.monotonic, pause=time.sleep, on_retry=None):
    """Call ``attempt()`` until it returns or ``wait_timeout`` seconds passed; ProbeErrors are retried
    (``on_retry(elapsed seconds, error)`` is told of each before the pause).

    ``attempt`` returns (result) or raises ProbeError; the error of the last attempt is re-raised with
    ``elapsed``, ``attempts`` and ``last_observation`` in its details.
    """
    start = clock()
    deadline = start + max(0, wait_timeout)
    attempts = 0
    while True:
        attempts += 1
        try:
            result = attempt()
            result.update(elapsed=round(clock() - start, 3), attempts=attempts)
            return result
        except ProbeError as exc:
            if clock() + sleep > deadline:
                exc.details.setdefault("elapsed", round(clock() - start, 3))
                exc.details["attempts"] = attempts
                exc.details.setdefault("last_observation", dict(checks=[], error=exc.message))
                exc.details.setdefault("checks", [])
                if wait_timeout > 0:
                    exc.message = "Still failing after %ss (%d attempts): %s" % (
                        round(clock() - start, 1), attempts, exc.message)
                raise
            if on_retry is not None:
                on_retry(clock() - start, exc)
            pause(sleep)


def load(client, model, question, max_tokens, requests, concurrency):
    """``requests`` streamed chat completions, ``concurrency`` at a time: throughput and latencies."""
    lock = threading.Lock()
    todo = list(range(requests))
    records = []
    errors = []

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                rec = client.stream_chat(model, question, max_tokens)
                with lock:
                    records.append(rec)
            except ProbeError as exc:
                with lock:
                    errors.append(str(exc))

    threads = [threading.Thread(target=worker, name="haw-icc-load-%d" % i) for i in range(max(1, concurrency))]
    start = time.monotonic()
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join()
    duration = time.monotonic() - start
    if not records:
        raise ProbeError("Every one of the %d load requests failed; first error: %s" % (requests, errors[0]))
    return summarize_load(records, errors, duration, requests, concurrency)


def summarize_load(records, errors, duration, requests, concurrency):
    latencies = [r["total_s"] for r in records]
    ttfts = [r["ttft_s"] for r in records if r["ttft_s"] is not None]
    tokens = sum(r["tokens"] for r in records)
    sources = sorted(set(r["tokens_source"] for r in records))
    return dict(
        requests=requests, concurrency=concurrency, completed=len(records), failed=len(errors),
        errors=errors[:5], duration_s=_r(duration),
        requests_per_s=_r(len(records) / duration) if duration > 0 else None,
        output_tokens=tokens, tokens_source="+".join(sources),
        output_tokens_per_s=_r(tokens / duration) if duration > 0 else None,
        latency_s=dict(p50=_r(percentile(latencies, 50)), p95=_r(percentile(latencies, 95)), max=_r(max(latencies))),
        ttft_s=dict(p50=_r(percentile(ttfts, 50)), p95=_r(percentile(ttfts, 95)),
                    max=_r(max(ttfts)) if ttfts else None),
    )
