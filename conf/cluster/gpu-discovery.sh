#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPUs this
# executor may use as {"name": "gpu", "addresses": [...]}; honours CUDA_VISIBLE_DEVICES.
set -euo pipefail
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  ids=${CUDA_VISIBLE_DEVICES//,/ }
else
  ids=$(nvidia-smi --query-gpu=index --format=csv,noheader)
fi
printf '{"name": "gpu", "addresses": ['
sep=""
for i in $ids; do printf '%s"%s"' "$sep" "$i"; sep=", "; done
printf ']}\n'
