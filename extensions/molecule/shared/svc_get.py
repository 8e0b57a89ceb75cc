"""GET a path through `kubectl port-forward svc/<service> <port>` (verification helper).

Usage: svc_get.py <kubeconfig> <namespace> <service> <port> <path>; prints the HTTP status and body.
kubectl comes from the sandbox ($SANDBOX_DIR/bin-dir).
"""
import os
import re
import subprocess
import sys
import urllib.request


def main():
    kubeconfig, namespace, service, port, path = sys.argv[1:6]
    sandbox = os.environ["SANDBOX_DIR"]
    with open(os.path.join(sandbox, "bin-dir")) as handle:
        kubectl = os.path.join(handle.read().strip(), "kubectl")
    proc = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig, "-n", namespace, "port-forward",
                             "svc/" + service, "0:" + port], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            sys.exit("port-forward did not start: %r %s" % (line, proc.stderr.read()))
        with urllib.request.urlopen("http://127.0.0.1:%s%s" % (match.group(1), path), timeout=20) as resp:
            print(resp.status)
            print(resp.read().decode())
    finally:
        proc.kill()


if __name__ == "__main__":
    main()
