#!/usr/bin/env bash
# Installs the system libraries lpc builds against (DESIGN.md §4). Idempotent; needs root or sudo.
#   libopenblas-dev     sgemm for MatMul
#   libprotobuf-c-dev   ONNX protobuf decoding (protobuf-c-compiler only to regenerate Sources/COnnxProto)
set -euo pipefail
packages=(libopenblas-dev libprotobuf-c-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
