"""How far measured times are from the machine's roofline.

`measure_machine` times, through the active Keras backend, a large float32
matmul (peak FLOP/s), a sum over a large array (read bandwidth), an
elementwise pass (copy bandwidth) and a chain of small-batch matmuls (the
rate at which the backend's matmul streams kernels at a decoder's batch).
`roofline_bounds` turns the analytic cost model of
`keras_fido.analysis` into lower bounds on the encoder and decoder time of
one benchmark record:

- encoder: its FLOPs at peak FLOP/s (it is compute bound);
- decoder step: the larger of its bytes moved at the read bandwidth and
  its FLOPs at peak FLOP/s, per `analysis.decoding_step_costs` (with the output
  projection to the vocabulary, which `generate` computes every step, and
  the self-attention cache at its full length `output_length + 1`, which is
  what the cached decoder attends over). The cross-attention key/value
  projections of the encoder output run once per `generate` call; their
  compute bound is spread over the steps. A second decoder bound puts the
  same bytes through the measured small-batch matmul rate instead: the
  best the backend's own kernels could do.

FLOPs here are two per multiply-add: `analysis` counts multiplications, so
a bound is `2 * multiplications / peak_flops_per_s`.
"""

import statistics
import time

import keras
import numpy as np

from keras_fido import analysis


def _block(x):
    """Waits for `x` by reading one element back to the host."""
    keras.ops.convert_to_numpy(keras.ops.reshape(x, (-1,))[:1])


def _median_seconds(fn, repeats):
    fn()  # Warm-up: allocation and, on jax, compilation of the op.
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def measure_peak_flops(size=2048, repeats=5):
    """Float32 FLOP/s of a `size`^3 matmul through `keras.ops.matmul`.

    Returns a dict with `flops_per_s` (`2 * size**3` FLOPs over the median
    time), `size`, `repeats` and every run in `runs_s`.
    """
    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(
        rng.standard_normal((size, size)).astype("float32")
    )
    b = keras.ops.convert_to_tensor(
        rng.standard_normal((size, size)).astype("float32")
    )
    median, runs = _median_seconds(
        lambda: _block(keras.ops.matmul(a, b)), repeats
    )
    return {
        "flops_per_s": 2 * size**3 / median,
        "size": size,
        "repeats": repeats,
        "runs_s": runs,
    }


def _array_pass_bandwidth(op, passes, mib, repeats):
    """Bytes per second of `op(x)` over a float32 array `x` of `mib` MiB
    that moves the array `passes` times."""
    elements = mib * 2**20 // 4
    x = keras.ops.ones((elements,), "float32")
    median, runs = _median_seconds(lambda: _block(op(x)), repeats)
    return {
        "bytes_per_s": passes * elements * 4 / median,
        "mib": mib,
        "repeats": repeats,
        "runs_s": runs,
    }


def measure_bandwidth(mib=512, repeats=5):
    """Bytes per second of `y = x + 1` over a float32 array of `mib` MiB.

    The pass reads `x` and writes `y`, so it moves `2 * mib` MiB.

    Returns a dict with `bytes_per_s`, `mib`, `repeats` and `runs_s`.
    """
    return _array_pass_bandwidth(
        lambda x: keras.ops.add(x, 1.0), 2, mib, repeats
    )


def measure_read_bandwidth(mib=512, repeats=5):
    """Bytes per second of summing a float32 array of `mib` MiB.

    A reduction only reads, which is what a decoding step mostly does
    (weights and caches in, a few activations out), so this is the
    bandwidth the decoder's bound uses.

    Returns a dict with `bytes_per_s`, `mib`, `repeats` and `runs_s`.
    """
    return _array_pass_bandwidth(keras.ops.sum, 1, mib, repeats)


def measure_matvec_bandwidth(
    batch_size=8, rows=768, columns=2048, matrices=24, repeats=5
):
    """Weight bytes per second that the backend's matmul streams at a
    decoder's batch size.

    `[batch_size, rows]` activations times `matrices` float32 kernels of
    `[rows, columns]` in turn (by default 144 MiB, more than a CPU's last
    cache level): the shape of a decoding step's projections, whose cost is
    reading the kernels. The gap between this and `measure_read_bandwidth`
    is how far the backend's small-batch matmul is from the memory system.

    Returns a dict with `bytes_per_s`, the shape, `repeats` and `runs_s`.
    """
    rng = np.random.default_rng(0)
    kernels = [
        keras.ops.convert_to_tensor(
            rng.standard_normal((rows, columns)).astype("float32")
        )
        for _ in range(matrices)
    ]
    x = keras.ops.convert_to_tensor(
        rng.standard_normal((batch_size, rows)).astype("float32")
    )

    def run():
        # Dispatched back to back and waited for together, as in a step.
        products = [keras.ops.matmul(x, kernel) for kernel in kernels]
        for product in products:
            _block(product)

    median, runs = _median_seconds(run, repeats)
    return {
        "bytes_per_s": matrices * rows * columns * 4 / median,
        "batch_size": batch_size,
        "rows": rows,
        "columns": columns,
        "matrices": matrices,
        "repeats": repeats,
        "runs_s": runs,
    }


def measure_machine(matmul_size=2048, copy_mib=512, repeats=5, batch_size=8):
    """Peak matmul FLOP/s and memory bandwidths of the active backend.

    `bandwidth_bytes_per_s` is the read bandwidth (the decoder's bound);
    `copy` (read and write) and `matvec` (what the backend's matmul streams
    at `batch_size` rows) are recorded beside it.
    """
    flops = measure_peak_flops(matmul_size, repeats)
    read = measure_read_bandwidth(copy_mib, repeats)
    matvec = measure_matvec_bandwidth(batch_size, repeats=repeats)
    return {
        "backend": keras.config.backend(),
        "peak_flops_per_s": flops["flops_per_s"],
        "bandwidth_bytes_per_s": read["bytes_per_s"],
        "matvec_bytes_per_s": matvec["bytes_per_s"],
        "matmul": flops,
        "read": read,
        "copy": measure_bandwidth(copy_mib, repeats),
        "matvec": matvec,
    }


def bound_seconds(flops, bytes_moved, peak_flops_per_s, bandwidth_bytes_per_s):
    """Roofline lower bound of one piece of work.

    Args:
        flops: number. FLOPs (two per multiply-add), or `None` to ignore
            compute.
        bytes_moved: number. Bytes read and written, or `None` to ignore
            memory traffic.
        peak_flops_per_s: float. The machine's peak FLOP/s.
        bandwidth_bytes_per_s: float. The machine's memory bandwidth.

    Returns:
        `(seconds, bound_by)` with `bound_by` `"compute"` or `"memory"`.
    """
    compute = 0.0 if flops is None else flops / peak_flops_per_s
    memory = 0.0 if bytes_moved is None else bytes_moved / bandwidth_bytes_per_s
    if memory > compute:
        return memory, "memory"
    return compute, "compute"


def _ratio(measured, bound):
    if measured is None or not bound:
        return None
    return measured / bound


def roofline_bounds(record, machine):
    """Lower bounds and measured / bound ratios for one benchmark record.

    Args:
        record: dict. A record from `runner.run_variant` (uses `config`,
            `setting`, `encoder_ms_per_sample` and `decoder_ms_per_step`).
        machine: dict. `measure_machine()`'s result (uses
            `peak_flops_per_s`, `bandwidth_bytes_per_s` and, when present,
            `matvec_bytes_per_s`).

    Returns:
        A dict with `encoder_bound_ms_per_sample`,
        `encoder_measured_over_bound` (None in decoder-only runs),
        `decoder_step_bound_ms_per_sample`, `decoder_step_bound_by`,
        `decoder_step_measured_ms_per_sample`,
        `decoder_step_measured_over_bound`, the same bound and ratio at
        the matmul rate (`decoder_step_matvec_bound_ms_per_sample`,
        `decoder_step_measured_over_matvec_bound`; None without one), and
        the model's
        `decoder_step_flops_per_sample` and `decoder_step_bytes_per_sample`.
    """
    config, setting = record["config"], record["setting"]
    batch = setting["batch_size"]
    steps = setting["output_length"]
    dtype = "bfloat16" if "bfloat16" in setting["dtype"] else "float32"
    peak = machine["peak_flops_per_s"]
    bandwidth = machine["bandwidth_bytes_per_s"]

    flops = analysis.flops_per_sample(
        config, setting["passages"], setting["passage_length"], steps
    )
    encoder_s, _ = bound_seconds(2 * flops["encoder_total"], None, peak, 1.0)
    step = analysis.decoding_step_costs(
        config,
        setting["passages"],
        setting["passage_length"],
        steps + 1,
        batch,
        dtype=dtype,
        include_logits=True,
    )["total"]
    step_s, bound_by = bound_seconds(
        2 * step["flops"], step["bytes"], peak, bandwidth
    )
    # Once per generate call, spread over the steps.
    projection_s, _ = bound_seconds(
        2 * flops["decoder_cross_attention_kv_projections"], None, peak, 1.0
    )
    step_bound_ms = 1e3 * (step_s / batch + projection_s / steps)
    encoder_bound_ms = 1e3 * encoder_s
    matvec_bound_ms = None
    if machine.get("matvec_bytes_per_s"):
        matvec_s, _ = bound_seconds(
            2 * step["flops"],
            step["bytes"],
            peak,
            machine["matvec_bytes_per_s"],
        )
        matvec_bound_ms = 1e3 * (matvec_s / batch + projection_s / steps)
    return {
        "encoder_bound_ms_per_sample": encoder_bound_ms,
        "encoder_measured_over_bound": _ratio(
            record["encoder_ms_per_sample"], encoder_bound_ms
        ),
        "decoder_step_bound_ms_per_sample": step_bound_ms,
        "decoder_step_bound_by": bound_by,
        "decoder_step_measured_ms_per_sample": record["decoder_ms_per_step"],
        "decoder_step_measured_over_bound": _ratio(
            record["decoder_ms_per_step"], step_bound_ms
        ),
        "decoder_step_matvec_bound_ms_per_sample": matvec_bound_ms,
        "decoder_step_measured_over_matvec_bound": _ratio(
            record["decoder_ms_per_step"], matvec_bound_ms
        ),
        "decoder_step_flops_per_sample": 2 * step["flops"] / batch,
        "decoder_step_bytes_per_sample": step["bytes"] / batch,
    }
