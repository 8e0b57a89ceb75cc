#!/usr/bin/env bash
# `make demo`: the main job on the local sandbox. Deploys vLLM (served in the sandbox by a real
# llama.cpp engine with SmolLM2) for student wstu001 with that student's own kubeconfig, asks the
# model a question, and prints how to reach the API and Open WebUI. The sandbox keeps running afterwards.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
student=${DEMO_STUDENT:-wstu001-default}
ansible-playbook -i inventories/sandbox playbooks/deploy.yml -l "$student"
eval "$(bash tests/cluster/sandbox.sh env)"
cat <<MSG

The model is running in namespace $student of the local sandbox. To talk to it yourself:
  export KUBECONFIG=$repo/.sandbox/students/$student.kubeconfig
  $SANDBOX_BIN/kubectl -n $student port-forward svc/vllm 8000:8000 &
  curl -s http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hello"}]}'
Open WebUI (the real Open WebUI 0.6.18; it starts on the first connection, about 10 s):
  ansible-playbook -i inventories/sandbox playbooks/access.yml -l $student -e icc_kubectl=$SANDBOX_BIN/kubectl
  then open http://127.0.0.1:3000 and create the first (admin) account.
Stop the sandbox with: make sandbox-down
MSG
