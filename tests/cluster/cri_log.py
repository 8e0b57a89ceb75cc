"""Copy stdin to stdout as CRI container log lines ("<RFC3339Nano> stdout F <line>").

kwok serves `kubectl logs` of the simulated pods from a file (manifests/kwok-debugging.yaml.tmpl)
and only understands the CRI (or Docker JSON) log format, as a kubelet would; plain text gives
"unsupported log format". The sandbox pipes the shared engine's output through this (pod_engines.py and pod_webui.py use cri_line).
"""
import datetime
import sys


def cri_line(line, stream="stdout"):
    """One log line in the CRI format, stamped now."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return "%s %s F %s\n" % (stamp, stream, line.rstrip("\n"))


def main():
    out = sys.stdout
    for line in sys.stdin:
        out.write(cri_line(line))
        out.flush()


if __name__ == "__main__":
    main()
