"""Test double for Open WebUI in the sandbox (no container runtime exists here).

Open WebUI itself cannot run on these machines (its image needs a container runtime). This stand-in
answers what the roles and health checks use: GET /health, GET / (an HTML page), and
GET /api/models, which lists the models of the engine it is pointed at, as Open WebUI does.
"""
import argparse
import json
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body, ctype="application/json"):
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/health":
                self._send(200, json.dumps({"status": True}))
            elif self.path == "/api/models":
                try:
                    with urllib.request.urlopen(args.engine + "/v1/models", timeout=10) as resp:
                        self._send(200, resp.read().decode())
                except OSError as exc:
                    self._send(502, json.dumps({"detail": str(exc)}))
            elif self.path == "/":
                self._send(200, "<html><title>Open WebUI (sandbox stand-in)</title></html>", "text/html")
            else:
                self._send(404, json.dumps({"detail": "Not Found"}))

        def log_message(self, fmt, *a):
            print("webui-standin: " + fmt % a, flush=True)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
