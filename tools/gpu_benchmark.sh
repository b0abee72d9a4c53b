#!/usr/bin/env bash
# The paper's accelerator figures on one GPU, recorded with tools/benchmark.py
# (JAX, bf16, random weights; B=24, P=40, L=256, T=32) into docs/benchmarks/:
#   paper_base_gpu_jax.json      FiD-Base (fid), FiDO-Base-Base (lsa_mq) and
#                                FiDO-Base-XL (lsa_mq_asym at size base)
#   paper_large_xxl_gpu_jax.json FiDO-Large-XXL (lsa_mq_asym at size large)
# then prints each figure against its target: FiD-Base / FiDO-Base-Base total
# >= 7x; FiDO-Base-XL within 1.3x of FiDO-Base-Base; FiDO-Large-XXL faster
# than FiD-Base. A few minutes on one H100.
#
# Usage: bash tools/gpu_benchmark.sh           # install what is missing, run
#        bash tools/gpu_benchmark.sh --check   # parse the flags only, no run
# Environment: RUN_TIMEOUT_S (seconds per benchmark run, default 270),
#              REPEATS (timed runs after the warm-up, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

run_timeout_s=${RUN_TIMEOUT_S:-270}
out=docs/benchmarks
setting=(--dtype bfloat16 --batch-size 24 --passages 40 --passage-length 256
    --output-length 32 --repeats "${REPEATS:-3}")
base_run=(--size base --variants fid,lsa_mq,lsa_mq_asym "${setting[@]}"
    --title "GPU: FiD-Base, FiDO-Base-Base and FiDO-Base-XL (bf16, paper setting)"
    --json "$out/paper_base_gpu_jax.json" --out-dir "$out/paper_base_gpu_jax")
large_run=(--size large --variants lsa_mq_asym "${setting[@]}"
    --title "GPU: FiDO-Large-XXL (bf16, paper setting)"
    --json "$out/paper_large_xxl_gpu_jax.json"
    --out-dir "$out/paper_large_xxl_gpu_jax")

export KERAS_BACKEND=jax
# TensorFlow loads beside JAX (tokenizers, data): keep it off the GPU memory.
export TF_FORCE_GPU_ALLOW_GROWTH=true

check() {  # NAME FLAGS...: parse the flags as tools/benchmark.py would
    python -c 'import sys
from keras_fido.benchmark.arguments import parse_args
args = parse_args(sys.argv[2:])
print(sys.argv[1], "parses:", args.size, args.variants, args.dtype,
      args.batch_size, args.passages, args.passage_length, args.output_length)
' "$@"
}

bench() {  # NAME FLAGS...: one timed run; a failure leaves it unmeasured
    local name=$1 start status=0
    shift
    echo "=== $name (timeout ${run_timeout_s}s)"
    start=$(date +%s)
    timeout "$run_timeout_s" python tools/benchmark.py "$@" || status=$?
    [ "$status" = 0 ] ||
        echo "=== $name failed or timed out (exit $status): unmeasured"
    echo "=== $name took $(( $(date +%s) - start )) s"
}

if [ "${1:-}" = "--check" ]; then
    check base "${base_run[@]}"
    check large "${large_run[@]}"
    exit 0
fi

# Install only what is missing (the machine may have no network).
python -c "import keras_fido, matplotlib" 2>/dev/null ||
    python -m pip install --quiet -c tools/constraints.txt -e ".[benchmark]"
if ! python -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" \
    2>/dev/null; then
    jax_version=$(python -c "import jax; print(jax.__version__)")
    python -m pip install --quiet -c tools/constraints.txt \
        "jax[cuda12]==$jax_version"
fi
python -c "import jax, sys; print('devices:', jax.devices()); \
sys.exit(jax.default_backend() != 'gpu')" || {
    echo "no GPU visible to JAX: nothing measured" >&2
    exit 1
}

mkdir -p "$out"
bench base "${base_run[@]}"
bench large "${large_run[@]}"

python - "$out/paper_base_gpu_jax.json" "$out/paper_large_xxl_gpu_jax.json" <<'EOF'
import json
import os
import sys


def totals(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        records = json.load(f)["records"]
    return {r["variant"]: r["total_ms_per_sample"] for r in records}


base, large = totals(sys.argv[1]), totals(sys.argv[2])
fid, fido, fido_xl = (base.get(v) for v in ("fid", "lsa_mq", "lsa_mq_asym"))
fido_xxl = large.get("lsa_mq_asym")
print("total ms/sample:", f"FiD-Base {fid}, FiDO-Base-Base {fido},",
      f"FiDO-Base-XL {fido_xl}, FiDO-Large-XXL {fido_xxl}")
figures = [
    ("FiD-Base / FiDO-Base-Base total", fid, fido, ">= 7x",
     lambda r: r >= 7.0),
    ("FiDO-Base-XL / FiDO-Base-Base total", fido_xl, fido, "<= 1.3x",
     lambda r: r <= 1.3),
    ("FiDO-Large-XXL / FiD-Base total", fido_xxl, fid, "< 1x (faster)",
     lambda r: r < 1.0),
]
for name, numerator, denominator, target, met in figures:
    if not numerator or not denominator:
        print(f"{name}: not measured (target {target})")
        continue
    ratio = numerator / denominator
    verdict = "met" if met(ratio) else "MISSED"
    print(f"{name}: {ratio:.2f}x (target {target}): {verdict}")
EOF
