# -*- coding: utf-8 -*-
# Copyright: haw_icc.llm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for OpenAI-compatible LLM servers (vLLM, TGI >= 1.4, llama.cpp), standard
library only, with errors that say what the server did wrong."""

from __future__ import annotations

import json
import socket
import time

from ansible.module_utils.six.moves.urllib.parse import urlsplit
from ansible.module_utils.six.moves import http_client

from ansible_collections.haw_icc.llm.plugins.module_utils._errors import ProbeError


class Response(object):
    def __init__(self, status, body, elapsed):
        self.status = status
        self.body = body
        self.elapsed = elapsed

    def json(self, what):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ProbeError("%s answered HTTP %d with something that is not JSON: %r"
                             % (what, self.status, self.body[:200]))


class OpenAIClient(object):
    """Blocking HTTP client bound to one base URL (http://host:port, no trailing /v1)."""

    def __init__(self, base_url, api_key=None, timeout=60.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError("base_url %r is not an http(s) URL." % base_url,
                             "Use e.g. http://127.0.0.1:8000.")
        self.base_url = base_url.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _connection(self):
        cls = http_client.HTTPSConnection if self._scheme == "https" else http_client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout)

    def _headers(self, body):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer %s" % self.api_key
        return headers

    def request(self, method, path, payload=None):
        body = json.dumps(payload).encode("utf-8") if payload is not None else None
        conn = self._connection()
        start = time.monotonic()
        try:
            conn.request(method, self._prefix + path, body=body, headers=self._headers(body))
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, data, time.monotonic() - start)
        except ConnectionRefusedError:
            raise ProbeError("Connection refused by %s." % self.base_url,
                             "Is the server running and listening on that port?")
        except socket.timeout:
            raise ProbeError("%s %s%s timed out after %ss." % (method, self.base_url, path, self.timeout),
                             "The server is overloaded or hangs; raise timeout or look at its logs.")
        except (OSError, http_client.HTTPException) as exc:
            raise ProbeError("%s %s%s failed: %s" % (method, self.base_url, path, exc or type(exc).__name__))
        finally:
            conn.close()

    def checked(self, method, path, payload=None):
        resp = self.request(method, path, payload)
        if resp.status >= 400:
            raise ProbeError("%s %s answered HTTP %d: %s" % (method, path, resp.status,
                                                             _server_message(resp.body)),
                             _advice(resp.status))
        return resp

    def models(self):
        resp = self.checked("GET", "/v1/models")
        data = resp.json("GET /v1/models")
        ids = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)] \
            if isinstance(data, dict) else []
        return ids, resp.elapsed

    def chat(self, model, question, max_tokens=32):
        payload = {"model": model, "messages": [{"role": "user", "content": question}],
                   "max_tokens": max_tokens, "temperature": 0}
        resp = self.checked("POST", "/v1/chat/completions", payload)
        data = resp.json("POST /v1/chat/completions")
        try:
            text = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProbeError("The chat completion has no choices[0].message.content: %r"
                             % (str(data)[:200],))
        return text, data.get("usage") or {}, resp.elapsed

    def optional(self, path):
        """GET an endpoint that not every server has: None on 404 (or 405), else the Response;
        other HTTP errors raise like ``checked``."""
        resp = self.request("GET", path)
        if resp.status in (404, 405):
            return None
        if resp.status >= 400:
            raise ProbeError("GET %s answered HTTP %d: %s" % (path, resp.status, _server_message(resp.body)),
                             _advice(resp.status))
        return resp

    def stream_chat(self, model, question, max_tokens=32, include_usage=True):
        """A streamed chat completion: text, time to first token, token count and tokens/s.

        Tokens are counted from the ``usage`` the server sends in the stream when it does (vLLM, TGI
        with ``stream_options.include_usage``), else from the number of content chunks (llama.cpp and
        TGI send one token per chunk). A stream that ends without ``[DONE]`` or a finish_reason is
        reported as cut off.
        """
        payload = {"model": model, "messages": [{"role": "user", "content": question}],
                   "max_tokens": max_tokens, "temperature": 0, "stream": True}
        if include_usage:
            payload["stream_options"] = {"include_usage": True}
        body = json.dumps(payload).encode("utf-8")
        conn = self._connection()
        start = time.monotonic()
        path = "/v1/chat/completions"
        try:
            try:
                conn.request("POST", self._prefix + path, body=body, headers=self._headers(body))
                resp = conn.getresponse()
            except ConnectionRefusedError:
                raise ProbeError("Connection refused by %s." % self.base_url,
                                 "Is the server running and listening on that port?")
            except socket.timeout:
                raise ProbeError("POST %s%s (stream) timed out after %ss." % (self.base_url, path, self.timeout),
                                 "The server is overloaded or hangs; raise timeout or look at its logs.")
            if resp.status >= 400:
                data = resp.read()
                if include_usage and resp.status in (400, 422) and b"stream_options" in data:
                    conn.close()
                    return self.stream_chat(model, question, max_tokens, include_usage=False)
                raise ProbeError("POST %s (stream) answered HTTP %d: %s" % (path, resp.status, _server_message(data)),
                                 _advice(resp.status))
            return _read_stream(resp, start, self.timeout)
        finally:
            conn.close()


def iter_sse(lines):
    """Data payloads of a Server-Sent Events stream given as an iterable of byte or text lines."""
    data = []
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _sep, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _lines(resp):
    while True:
        line = resp.readline()
        if not line:
            return
        yield line


def parse_stream(events, start, clock=time.monotonic):
    """Fold SSE data payloads of a chat completion stream into the figures llm_health reports."""
    text = []
    chunks = 0
    first = last = None
    usage = None
    finish = None
    done = False
    for payload in events:
        if payload.strip() == "[DONE]":
            done = True
            break
        try:
            event = json.loads(payload)
        except ValueError:
            raise ProbeError("The stream sent something that is not JSON: %r" % payload[:200])
        if not isinstance(event, dict):
            raise ProbeError("The stream sent an unexpected event: %r" % payload[:200])
        if event.get("error"):
            raise ProbeError("The server reported an error in the stream: %s" % _server_message(
                json.dumps(event).encode("utf-8")))
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if piece:
                now = clock()
                if first is None:
                    first = now
                last = now
                chunks += 1
                text.append(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
    end = clock()
    if finish is None:
        raise ProbeError("The stream was cut off after %d content chunks (%s)."
                         % (chunks, "[DONE] without a finish_reason: the server aborted the request" if done
                            else "no finish_reason and no [DONE]"),
                         "The server or a proxy ended the answer early; look at the server's logs. llama.cpp's "
                         "server aborts a stream when another request arrives unless interrupt_requests is off.")
    tokens = None
    source = "chunks"
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        tokens = usage["completion_tokens"]
        source = "usage"
    else:
        tokens = chunks
    ttft = None if first is None else first - start
    decode = (last - first) if first is not None and last is not None else 0.0
    return dict(text="".join(text), chunks=chunks, tokens=tokens, tokens_source=source, usage=usage or {},
                finish_reason=finish, ttft_s=ttft, total_s=end - start,
                tokens_per_s=(tokens - 1) / decode if decode > 0 and tokens > 1 else None,
                e2e_tokens_per_s=tokens / (end - start) if end > start else None)


def _read_stream(resp, start, timeout):
    try:
        return parse_stream(iter_sse(_lines(resp)), start)
    except socket.timeout:
        raise ProbeError("The stream stalled: no data for %ss." % timeout,
                         "The server is overloaded or hangs; raise timeout or look at its logs.")
    except (http_client.IncompleteRead, http_client.HTTPException, OSError) as exc:
        raise ProbeError("The stream was cut off: %s." % (exc or type(exc).__name__),
                         "The server or a proxy closed the connection early; look at the server's logs.")


def _server_message(body):
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message", data)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(data)[:300]


def _advice(status):
    if status == 401:
        return "The server wants an API key: set llm_api_key (or api_key_secret, the engine's Secret)."
    if status == 404:
        return "Check the URL and the model name; the server does not know this path or model."
    if status >= 500:
        return "The server failed; look at its logs (haw_icc.llm.logs playbook)."
    return None
