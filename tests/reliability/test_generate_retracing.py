"""`generate` on same-shaped batches compiles once, does the same Python
work every call, and its resident memory stops growing after warm-up."""

import gc

import keras
import numpy as np

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import tiny_backbone

CALLS = 200
WARM_UP = 20
RSS_GROWTH_BOUND_MIB = 50  # generous: allocator noise is a few MiB
TARGET_LENGTH = 4
VOCABULARY = 64


def resident_mib():
    """This process' resident set size (VmRSS), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def batches(count=8, seed=0):
    """`count` different token batches of one shape: `[2, 3, 8]` passages
    (one short) and a start-token prompt of `TARGET_LENGTH`."""
    rng = np.random.default_rng(seed)
    mask = np.ones((2, 3, 8), "int32")
    mask[1, 2, 4:] = 0
    prompt_mask = np.zeros((2, TARGET_LENGTH), "int32")
    prompt_mask[:, 0] = 1
    return [
        {
            "encoder_token_ids": (
                rng.integers(2, VOCABULARY, mask.shape) * mask
            ).astype("int32"),
            "encoder_padding_mask": mask,
            "decoder_token_ids": np.zeros((2, TARGET_LENGTH), "int32"),
            "decoder_padding_mask": prompt_mask,
        }
        for _ in range(count)
    ]


def test_repeated_generate_traces_once_and_memory_stops_growing(
    monkeypatch,
):
    reader = FiDOSeq2SeqLM(tiny_backbone("fido", vocabulary_size=VOCABULARY))
    # The Python bodies run once per trace on JAX (`jax.jit`) and
    # TensorFlow (`tf.function`), and on every call on torch (eager).
    traces, decoder_steps = [], []
    generate_step = reader.generate_step
    call_decoder = reader.call_decoder_with_cache

    def counting_generate_step(*args, **kwargs):
        traces.append(1)
        return generate_step(*args, **kwargs)

    def counting_call_decoder(*args, **kwargs):
        decoder_steps.append(1)
        return call_decoder(*args, **kwargs)

    monkeypatch.setattr(reader, "generate_step", counting_generate_step)
    monkeypatch.setattr(
        reader, "call_decoder_with_cache", counting_call_decoder
    )
    inputs = batches()
    outputs = []
    for i in range(WARM_UP):
        out = reader.generate(inputs[i % len(inputs)], stop_token_ids=None)
        outputs.append(np.asarray(out["decoder_token_ids"]))
    gc.collect()
    warm_rss = resident_mib()
    warm_steps = len(decoder_steps)
    for i in range(WARM_UP, CALLS):
        reader.generate(inputs[i % len(inputs)], stop_token_ids=None)
    gc.collect()
    growth = resident_mib() - warm_rss
    print(
        f"{CALLS} generate calls: {len(traces)} trace(s) of generate_step; "
        f"{warm_rss:.0f} MiB resident after {WARM_UP}, then {growth:+.1f} MiB"
    )

    if keras.config.backend() == "torch":
        # Nothing is compiled: every call runs the step, with the same
        # number of decoder calls (one per generated token).
        assert len(traces) == CALLS
        assert len(decoder_steps) - warm_steps == (CALLS - WARM_UP) * (
            TARGET_LENGTH - 1
        )
    else:
        assert len(traces) == 1, f"generate traced {len(traces)} times"
        assert len(decoder_steps) == warm_steps
    assert growth < RSS_GROWTH_BOUND_MIB, (
        f"resident memory grew {growth:.1f} MiB over {CALLS - WARM_UP} "
        "calls after warm-up"
    )
    # Different batches gave different answers: the compiled function
    # really read its inputs.
    assert len({o.tobytes() for o in outputs[: len(inputs)]}) > 1
