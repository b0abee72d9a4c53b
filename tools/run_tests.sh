#!/usr/bin/env bash
# Installs keras_fido with its test extra, then runs the whole suite once per
# Keras backend (jax, tensorflow, torch). Usage: bash tools/run_tests.sh [pytest args]
# Set BACKENDS="jax" to run one backend. Tests marked `large` run on one
# backend only, LARGE_BACKEND (default: jax); the others deselect them.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -c tools/constraints.txt -e ".[test]"

# JAX compiles every eager op once per shape; a persistent compilation cache
# makes later runs on the same machine much faster (it is only a cache).
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/keras_fido_jax_cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

backends=${BACKENDS:-"jax tensorflow torch"}
large_backend=${LARGE_BACKEND:-jax}
status=0
for backend in $backends; do
    echo "=== KERAS_BACKEND=$backend ==="
    start=$(date +%s)
    extra_env=()
    # Torch's intra-op threads fight over two cores on these tiny ops.
    [ "$backend" = torch ] && extra_env=(OMP_NUM_THREADS=1)
    select=()
    [ "$backend" != "$large_backend" ] && select=(-m "not large")
    env "${extra_env[@]}" KERAS_BACKEND="$backend" \
        python -m pytest -q -p no:cacheprovider "${select[@]}" "$@" || status=1
    echo "=== $backend took $(( $(date +%s) - start )) s ==="
done
exit $status
