"""Copy stdin to stdout as CRI container log lines ("<RFC3339Nano> stdout F <line>").

kwok serves `kubectl logs` of the simulated pods from a file (manifests/kwok-debugging.yaml.tmpl)
and only understands the CRI (or Docker JSON) log format, as a kubelet would; plain text gives
"unsupported log format". The sandbox pipes the engine's and the WebUI stand-in's output through this.
"""
import datetime
import sys


def main():
    out = sys.stdout
    for line in sys.stdin:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        out.write("%s stdout F %s\n" % (stamp, line.rstrip("\n")))
        out.flush()


if __name__ == "__main__":
    main()
