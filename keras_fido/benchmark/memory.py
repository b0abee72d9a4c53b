"""The largest batch whose `generate` fits a memory budget (paper Table 1).

Each batch size is measured in a fresh subprocess (`python -m
keras_fido.benchmark.memory`, the "child"), so that no allocator cache or
compiled function of an earlier measurement inflates the next one:

1. the child builds the reader (weights in memory), collects garbage and
   reads its resident set size, `baseline_rss_bytes`: the memory of a
   process that built the model but has not generated;
2. it resets the kernel's peak-RSS counter (`VmHWM`, by writing `5` to
   `/proc/self/clear_refs`; where that fails the peak since start is used,
   which can only overstate memory), makes the random inputs, runs
   `generate` once (compilation included) with every step forced, and reads
   the peak, `peak_rss_bytes`;
3. `generate_bytes = peak_rss_bytes - baseline_rss_bytes` is what
   generation adds: inputs, encoder activations, the cross-attention and
   self-attention caches, logits, and the compiler's working memory.

A batch fits when `generate_bytes + weight_bytes` (the weights as stored,
as a device holding the model would keep them; the Python runtime and
backend libraries in the baseline are left out) is at most the budget. On a
GPU backend the device's own peak (jax `memory_stats()["peak_bytes_in_use"]`,
`torch.cuda.max_memory_allocated()` or TensorFlow's `get_memory_info`
peak), which includes the weights, is used instead.

The search doubles the batch from 1 until a batch does not fit (or the cap
is reached), then bisects between the last fit and the first miss. A batch
whose analytic cross-attention cache alone exceeds the budget counts as a
miss without being run, and so does one whose memory, extrapolated along
the line through the two largest measured batches, exceeds the memory the
machine has available (a budget larger than the machine cannot be
measured on it; the reason says so); a child that crashes (killed for
memory) or runs past the per-measurement timeout counts as a miss too, and
the reason is recorded.
"""

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import time


def _proc_status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _max_rss_bytes():
    """Peak RSS of this process from `getrusage` (KiB on Linux)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else 1024 * peak


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _device_peak_bytes():
    """Peak device memory of a GPU backend, or None on a CPU."""
    import keras

    backend = keras.config.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "cpu":
                return None
            return int(device.memory_stats()["peak_bytes_in_use"])
        if backend == "torch":
            import torch

            if not torch.cuda.is_available():
                return None
            return int(torch.cuda.max_memory_allocated())
        if backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return None
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except Exception:  # Stats are optional; fall back to RSS.
        return None
    return None


def measure_child(
    variant,
    size,
    batch_size,
    passages,
    passage_length,
    output_length,
    dtype="float32",
    decoder_only=False,
    quantize=None,
):
    """Runs in the child: memory of one `generate` call (see module doc)."""
    import keras

    from keras_fido.benchmark.runner import build_reader
    from keras_fido.benchmark.runner import quantize_reader
    from keras_fido.benchmark.runner import random_inputs
    from keras_fido.benchmark.runner import weight_bytes
    from keras_fido.benchmark.variants import variant_config

    config = variant_config(size, variant)
    keras.utils.set_random_seed(0)
    reader = build_reader(config, dtype)
    if quantize:
        quantize_reader(reader, quantize)
    gc.collect()
    rss = _proc_status_kib("VmRSS")
    if rss is None:  # No /proc: the peak so far stands in for the baseline.
        baseline, hwm_reset = _max_rss_bytes(), False
    else:
        baseline, hwm_reset = 1024 * rss, _reset_peak_rss()

    ids, mask, decoder_ids, decoder_mask = random_inputs(
        config, batch_size, passages, passage_length, output_length
    )
    inputs = {
        "encoder_token_ids": ids,
        "encoder_padding_mask": mask,
        "decoder_token_ids": decoder_ids,
        "decoder_padding_mask": decoder_mask,
    }
    if decoder_only:
        # Made on the backend directly (a numpy copy would count twice),
        # filled so that its pages are resident; values do not matter.
        del inputs["encoder_token_ids"]
        inputs["encoder_sequence_output"] = keras.ops.ones(
            (
                batch_size,
                passages * passage_length,
                config["encoder_hidden_dim"],
            )
        )
    start = time.perf_counter()
    reader.generate(inputs, stop_token_ids=None)
    seconds = time.perf_counter() - start
    hwm = _proc_status_kib("VmHWM")
    peak = 1024 * hwm if hwm is not None else _max_rss_bytes()
    return {
        "batch_size": batch_size,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "generate_bytes": max(peak - baseline, 0),
        "weight_bytes": weight_bytes(reader.backbone),
        "peak_reset": hwm_reset,
        "device_peak_bytes": _device_peak_bytes(),
        "generate_s": seconds,
    }


def required_bytes(measurement):
    """Memory a batch needs: device peak, else generation plus weights."""
    if measurement.get("device_peak_bytes") is not None:
        return measurement["device_peak_bytes"]
    return measurement["generate_bytes"] + measurement["weight_bytes"]


def run_child(setting, batch_size, timeout_s):
    """Measures one batch size in a subprocess.

    Returns `(measurement dict or None, failure reason or None)`; reasons
    are `"timeout"` and `"crash: ..."` (for instance killed for memory).
    """
    command = [
        sys.executable,
        "-m",
        "keras_fido.benchmark.memory",
        "--child",
        json.dumps(dict(setting, batch_size=batch_size)),
    ]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        return None, "timeout"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return (
            None,
            f"crash: exit {done.returncode} {_error_line(done.stderr)}"[:300],
        )
    try:
        return json.loads(lines[-1]), None
    except json.JSONDecodeError:
        return None, f"crash: unreadable output {lines[-1]!r}"[:300]


def _error_line(stderr):
    """The exception line of a child's stderr (the last `...Error: ...` or
    `...Exception: ...` line; backends print notes after it), or its last
    line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line):
            return line
    return lines[-1] if lines else ""


def _available_memory_bytes():
    """`MemAvailable` from /proc/meminfo, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return 1024 * int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def extrapolate_bytes(points, batch):
    """Memory at `batch` on the line through the two largest measured
    batches, or None with fewer than two.

    Args:
        points: list of `(batch_size, required_bytes)`.
        batch: int. The batch to predict.
    """
    points = sorted(set(points))
    if len(points) < 2:
        return None
    (b1, r1), (b2, r2) = points[-2:]
    slope = max((r2 - r1) / (b2 - b1), 0.0)
    return r2 + slope * (batch - b2)


def search_max_batch(measure, budget_bytes, cap=1024, precheck=None):
    """Largest batch in `[1, cap]` that `measure` says fits `budget_bytes`.

    Doubles from 1 until a miss or the cap, then bisects between the last
    fit and the first miss. Assumes memory grows with the batch.

    Args:
        measure: callable `batch -> (required bytes or None, reason)`;
            `None` bytes (with a reason) is a miss.
        budget_bytes: int. The budget.
        cap: int. The largest batch tried.
        precheck: optional callable `batch -> reason or None`; a reason
            makes that batch a miss without calling `measure`.

    Returns:
        A dict with `max_batch` (0 if batch 1 does not fit), `cap`,
        `cap_hit` (the cap itself fits, so the true maximum may be larger),
        `limited_by` (the reason of the smallest miss: `"budget"`,
        `"analytic cache"`, `"machine memory (...)"`, `"timeout"`,
        `"crash: ..."`, or `"cap"`), and
        `trials`, a list of `{batch_size, required_bytes, fits, reason}` in
        the order run.
    """
    trials = []
    verdicts = {}

    def fits(batch):
        reason = precheck(batch) if precheck else None
        required = None
        if reason is None:
            required, reason = measure(batch)
            if required is not None and required > budget_bytes:
                reason = "budget"
        ok = reason is None
        trials.append(
            {
                "batch_size": batch,
                "required_bytes": required,
                "fits": ok,
                "reason": reason,
            }
        )
        verdicts[batch] = reason
        return ok

    low, high = 0, None  # Largest fit, smallest miss.
    batch = 1
    while True:
        if fits(batch):
            low = batch
            if batch >= cap:
                break
            batch = min(2 * batch, cap)
        else:
            high = batch
            break
    if high is not None:
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
    return {
        "max_batch": low,
        "cap": cap,
        "cap_hit": high is None,
        "limited_by": "cap" if high is None else verdicts[high],
        "trials": trials,
    }


def max_batch(
    variant,
    size,
    passages,
    passage_length,
    output_length,
    dtype="float32",
    decoder_only=False,
    quantize=None,
    budget_gib=16.0,
    cap=1024,
    timeout_s=600,
    log=print,
):
    """The largest batch of one variant within `budget_gib` (module doc).

    Returns the `search_max_batch` dict plus `variant`, `budget_bytes`,
    the cross-attention cache bytes per sample (analytic, as allocated),
    the method used, and every child's measurement in `measurements`.
    """
    from keras_fido import analysis
    from keras_fido.benchmark.runner import storage_dtype
    from keras_fido.benchmark.variants import variant_config

    config = variant_config(size, variant)
    cache_per_sample = analysis.cross_attention_cache_bytes_per_sample(
        config, passages, passage_length, dtype=storage_dtype(dtype)
    )
    budget = int(budget_gib * 2**30)
    setting = dict(
        variant=variant,
        size=size,
        passages=passages,
        passage_length=passage_length,
        output_length=output_length,
        dtype=dtype,
        decoder_only=decoder_only,
        quantize=quantize,
    )
    measurements = []
    available = _available_memory_bytes()

    def precheck(batch):
        if batch * cache_per_sample > budget:
            return "analytic cache"
        predicted = extrapolate_bytes(
            [(m["batch_size"], required_bytes(m)) for m in measurements], batch
        )
        if available and predicted and predicted > available:
            # Protects the machine when the budget exceeds its memory.
            return (
                f"machine memory ({predicted / 2**30:.1f} GiB extrapolated, "
                f"{available / 2**30:.1f} GiB available)"
            )
        return None

    def measure(batch):
        start = time.perf_counter()
        measurement, failure = run_child(setting, batch, timeout_s)
        seconds = time.perf_counter() - start
        required = None if measurement is None else required_bytes(measurement)
        log(
            f"  {variant} batch {batch}: "
            + (
                failure
                if failure
                else f"{required / 2**30:.2f} GiB needed "
                f"(peak reset {measurement['peak_reset']})"
            )
            + f" [{seconds:.0f} s]"
        )
        if measurement is not None:
            measurements.append(dict(measurement, wall_s=seconds))
        return required, failure

    result = search_max_batch(measure, budget, cap=cap, precheck=precheck)
    fit = [t for t in result["trials"] if t["fits"]]
    return {
        "variant": variant,
        **result,
        "budget_bytes": budget,
        "required_bytes_at_max_batch": (
            max(fit, key=lambda t: t["batch_size"])["required_bytes"]
            if fit
            else None
        ),
        "cross_attention_cache_bytes_per_sample": cache_per_sample,
        "method": (
            "device peak"
            if any(m["device_peak_bytes"] is not None for m in measurements)
            else "peak RSS - baseline RSS + weights"
        ),
        "timeout_s": timeout_s,
        "measurements": measurements,
    }


def _child_main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_fido.benchmark.memory",
        description="One memory measurement of `generate` (used by "
        "`python -m keras_fido.benchmark --max-batch`).",
    )
    parser.add_argument(
        "--child",
        required=True,
        help="JSON dict of `measure_child` arguments",
    )
    args = parser.parse_args(argv)
    result = measure_child(**json.loads(args.child))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
