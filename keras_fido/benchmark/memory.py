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

from keras_fido.benchmark.batch_search import extrapolate_bytes
from keras_fido.benchmark.batch_search import search_max_batch
from keras_fido.benchmark.process_memory import available_memory_bytes
from keras_fido.benchmark.process_memory import device_peak_bytes
from keras_fido.benchmark.process_memory import max_rss_bytes
from keras_fido.benchmark.process_memory import proc_status_kib
from keras_fido.benchmark.process_memory import reset_peak_rss


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

    from keras_fido.benchmark.quantized import quantize_reader
    from keras_fido.benchmark.quantized import weight_bytes
    from keras_fido.benchmark.runner import build_reader
    from keras_fido.benchmark.variants import variant_config

    config = variant_config(size, variant)
    keras.utils.set_random_seed(0)
    reader = build_reader(config, dtype)
    if quantize:
        quantize_reader(reader, quantize)
    gc.collect()
    rss = proc_status_kib("VmRSS")
    if rss is None:  # No /proc: the peak so far stands in for the baseline.
        baseline, hwm_reset = max_rss_bytes(), False
    else:
        baseline, hwm_reset = 1024 * rss, reset_peak_rss()

    inputs = _child_inputs(
        config,
        batch_size,
        passages,
        passage_length,
        output_length,
        decoder_only,
    )
    start = time.perf_counter()
    reader.generate(inputs, stop_token_ids=None)
    seconds = time.perf_counter() - start
    hwm = proc_status_kib("VmHWM")
    peak = 1024 * hwm if hwm is not None else max_rss_bytes()
    return {
        "batch_size": batch_size,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "generate_bytes": max(peak - baseline, 0),
        "weight_bytes": weight_bytes(reader.backbone),
        "peak_reset": hwm_reset,
        "device_peak_bytes": device_peak_bytes(),
        "generate_s": seconds,
    }


def _child_inputs(
    config, batch_size, passages, passage_length, output_length, decoder_only
):
    """The random `generate` inputs of one measurement."""
    import keras

    from keras_fido.benchmark.runner import random_inputs

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
    return inputs


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

    precheck = _precheck(cache_per_sample, budget, measurements)
    measure = _measure(setting, timeout_s, measurements, log)
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


def _precheck(cache_per_sample, budget, measurements):
    """Why a batch counts as a miss without being run, or None."""
    available = available_memory_bytes()

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

    return precheck


def _measure(setting, timeout_s, measurements, log):
    """Measures one batch in a child; (bytes needed, failure or None)."""
    variant = setting["variant"]

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

    return measure


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
