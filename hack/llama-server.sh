#!/usr/bin/env bash
# Builds (or reuses) llama.cpp's own `llama-server` binary for the sandbox, from the llama.cpp source
# that the pinned llama-cpp-python sdist vendors (requirements-dev.txt; PyPI is the only source it
# needs). CPU only, no curl. Cached by version under $HAW_ICC_CACHE/bin/llama-server-<version>/.
# Prints the path of the binary on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HAW_ICC_CACHE:-$HOME/.cache/haw-icc-llm}
version=$(sed -n 's/^llama-cpp-python\[server\]==\([0-9.]*\).*/\1/p' "$here/requirements-dev.txt")
[ -n "$version" ] || { echo "llama-server: no llama-cpp-python pin in requirements-dev.txt" >&2; exit 1; }
out="$cache/bin/llama-server-$version"
if [ ! -x "$out/llama-server" ]; then
  echo "llama-server: building llama.cpp's server from llama-cpp-python $version's vendored source (first time: ~5-10 min)" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pip=${PIP:-$here/.venv/bin/pip}
  "$pip" download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version"
  tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work" "llama_cpp_python-$version/vendor/llama.cpp"
  src="$work/llama_cpp_python-$version/vendor/llama.cpp"
  # GGML_NATIVE=OFF: not this CPU's AVX-512/AMX (as hack/env.sh); static, so the binary stands alone;
  # no HTTPS and no prebuilt web UI (its build would download it), nothing but the server.
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    >"$work/cmake.log" 2>&1 || { tail -30 "$work/cmake.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama-server -j "${LLAMA_SERVER_JOBS:-$(nproc)}" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
  mkdir -p "$out.tmp"
  cp "$work/build/bin/llama-server" "$out.tmp/"
  "$out.tmp/llama-server" --version >"$out.tmp/VERSION" 2>&1 || true
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
echo "$out/llama-server"
