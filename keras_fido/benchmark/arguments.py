"""The benchmark's command line: flags, their checks and the sweeps."""

import argparse

from keras_fido.benchmark.variants import LADDER
from keras_fido.benchmark.variants import VARIANTS
from keras_fido.utils.console import add_verbose_flag

SWEEP_DEFAULTS = {
    "passages": (10, 20, 40),
    "output_length": (8, 16, 32, 64),
    "batch_size": (1, 2, 4, 8),
}

EPILOG = """\
modes (combine freely, except --max-batch, which replaces the timing):
  default        time encoder and decoder per sample along the ladder
  --sweep        also rerun the ladder at several passages / output lengths /
                 batch sizes and plot time per sample against each
  --roofline     also measure peak FLOP/s, read bandwidth and the small-batch
                 matmul rate, report measured / lower bound for the encoder
                 and the decoder step
  --peer         also time vanilla FiD through HuggingFace transformers, or
                 (onnxruntime) transformers' T5 exported to ONNX by
                 torch.onnx and served by ONNX Runtime
  --engine       keras (default) or onnxruntime: the exported graphs
  --quantize     also time each variant after keras.Model.quantize (ONNX
                 Runtime's int8 for --engine and --peer onnxruntime)
  --beam N       also time N-beam search against greedy at batch size 1
  --max-batch    largest batch within --memory-budget-gib (no timing)
  --docs PATH    write the performance document; with --docs-from, from
                 earlier --json files without running anything

Outputs go to --out-dir: table.md, time_per_sample.png, sweep_NAME.png.
"""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, received {text!r}"
        )
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, received {text!r}"
        )
    return value


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m keras_fido.benchmark",
        description="Encoder and decoder time per sample, memory and "
        "roofline along FiDO's ablation ladder (fid, lsa, lsa_mq, "
        "lsa_mq_asym), backend from KERAS_BACKEND. Weights are random.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_shape_arguments(p)
    _add_sweep_and_roofline_arguments(p)
    _add_comparison_arguments(p)
    _add_memory_arguments(p)
    _add_output_arguments(p)
    add_verbose_flag(p)
    return p


def _add_shape_arguments(p):
    """The model size, the input shape and the variants timed."""
    p.add_argument(
        "--size",
        default="base",
        help="tiny, small, base, large, xl or xxl (default base); "
        "lsa_mq_asym's decoder is two T5 sizes larger",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=8,
        help="samples per generate call (default 8)",
    )
    p.add_argument(
        "--passages",
        type=_positive_int,
        default=40,
        help="passages per sample (default 40)",
    )
    p.add_argument(
        "--passage-length",
        type=_positive_int,
        default=256,
        help="tokens per passage (default 256)",
    )
    p.add_argument(
        "--output-length",
        type=_positive_int,
        default=32,
        help="decoding steps; all are run, no early stop (default 32)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "mixed_bfloat16"],
        help="dtype policy of the backbone (default float32)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=3,
        help="timed runs after one warm-up; the median is reported (default 3)",
    )
    p.add_argument(
        "--variants",
        default=",".join(LADDER),
        help=f"comma list from {','.join(VARIANTS)} (default the ladder, "
        f"{','.join(LADDER)}; the lsa_mq_live_* variants have passage "
        "memory: their encoder time is a query's, from stored memory)",
    )
    p.add_argument(
        "--decoder-only",
        action="store_true",
        help="feed random encoder states; time the decoder only",
    )


def _add_sweep_and_roofline_arguments(p):
    """The sweeps and the roofline measurements."""
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME[=V1,V2,...]",
        help="rerun the ladder at each value of NAME (passages, "
        "output_length or batch_size) and plot time per sample against it; "
        "repeat the option for several sweeps. Without values: "
        + "; ".join(
            f"{k} {','.join(map(str, v))}" for k, v in SWEEP_DEFAULTS.items()
        )
        + ". `--sweep all` runs the three with their defaults",
    )
    p.add_argument(
        "--roofline",
        action="store_true",
        help="measure peak matmul FLOP/s, read and copy bandwidth and the "
        "matmul rate at --batch-size rows once, and report measured / "
        "lower-bound time for the encoder and the decoder step",
    )
    p.add_argument(
        "--roofline-matmul-size",
        type=_positive_int,
        default=2048,
        help="N of the float32 N x N x N matmul timed for peak FLOP/s "
        "(default 2048)",
    )
    p.add_argument(
        "--roofline-copy-mib",
        type=_positive_int,
        default=512,
        help="MiB of the float32 array summed (read bandwidth) and copied "
        "(copy bandwidth) (default 512)",
    )


def _add_comparison_arguments(p):
    """The engine, the peer, quantization and beam search."""
    p.add_argument(
        "--engine",
        choices=["keras", "onnxruntime"],
        default="keras",
        help="keras (the KERAS_BACKEND) or onnxruntime (the variant "
        "exported with keras_fido.export.export_onnx and served by "
        "OnnxReader; float32, greedy) (default keras)",
    )
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="keras engine: the reader's compile(jit_compile=True): on "
        "torch each decoding step is captured by torch.export and compiled "
        "by inductor, once per shape; on TensorFlow the decoding loop is "
        "XLA-compiled (keras leaves XLA off on CPU-only machines by "
        "default); JAX compiles the loop anyway",
    )
    p.add_argument(
        "--peer",
        choices=["transformers", "onnxruntime"],
        default=None,
        help="also time the fid variant's size through a peer and print "
        "keras_fido / peer ratios: transformers (HuggingFace T5 in "
        "PyTorch, FiD-style generate) or onnxruntime (the same T5 "
        "exported by torch.onnx into encoder, cross K/V and cached "
        "decoder-step graphs, served by ONNX Runtime with IO binding; "
        "with --quantize int8 also its quantize_dynamic int8 graphs); "
        "needs fid in --variants and --dtype float32",
    )
    p.add_argument(
        "--peer-threads",
        type=_positive_int,
        default=None,
        help="threads of the peer: torch threads, or ONNX Runtime's "
        "shared pool (default: the machine's cores, os.cpu_count())",
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="also quantize each variant (keras.Model.quantize; with "
        "--engine onnxruntime, and for --peer onnxruntime, ONNX "
        "Runtime's quantize_dynamic), time it and report token "
        "agreement with the float model",
    )
    p.add_argument(
        "--beam",
        type=_positive_int,
        default=None,
        metavar="NUM_BEAMS",
        help="also time beam search with NUM_BEAMS beams (keras-hub "
        "BeamSampler) against greedy, at batch size 1",
    )


def _add_memory_arguments(p):
    """`--max-batch` and its budget."""
    p.add_argument(
        "--max-batch",
        action="store_true",
        help="instead of timing, find each variant's largest batch whose "
        "generate fits --memory-budget-gib (one subprocess per "
        "measurement; see keras_fido/benchmark/memory.py)",
    )
    p.add_argument(
        "--memory-budget-gib",
        type=_positive_float,
        default=16.0,
        help="memory budget of --max-batch in GiB (default 16)",
    )
    p.add_argument(
        "--max-batch-cap",
        type=_positive_int,
        default=1024,
        help="largest batch --max-batch tries (default 1024)",
    )
    p.add_argument(
        "--memory-timeout-s",
        type=_positive_float,
        default=600.0,
        help="seconds one --max-batch measurement may run before it "
        "counts as a miss (default 600)",
    )


def _add_output_arguments(p):
    """The JSON, table, plot and document outputs."""
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--out-dir",
        default="benchmarks_out",
        help="folder for table.md and the PNG plots (default benchmarks_out)",
    )
    p.add_argument(
        "--docs",
        default=None,
        metavar="PATH",
        help="write the performance document (markdown with the tables, "
        "the plots and the machine) to PATH, e.g. docs/performance.md",
    )
    p.add_argument(
        "--docs-from",
        nargs="+",
        default=None,
        metavar="JSON",
        help="with --docs: build the document from these --json files of "
        "earlier runs, in order, instead of running a benchmark",
    )
    p.add_argument(
        "--title",
        default=None,
        help="a title for this run's section of the document",
    )


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        p.error(
            f"--variants: expected a comma list from {list(VARIANTS)}. "
            f"Received: {args.variants!r}"
        )
    args.variants = variants
    try:
        args.sweep = _parse_sweeps(args.sweep)
    except ValueError as error:
        p.error(str(error))
    if args.docs_from and not args.docs:
        p.error("--docs-from needs --docs PATH. Received: no --docs")
    if args.max_batch:
        timed = [
            flag
            for flag, on in (
                ("--sweep", args.sweep),
                ("--roofline", args.roofline),
                ("--peer", args.peer),
                ("--beam", args.beam),
            )
            if on
        ]
        if timed:
            p.error(
                "--max-batch measures memory instead of timing: expected no "
                f"timing options with it. Received: {' '.join(timed)}"
            )
    if args.jit_compile and args.engine != "keras":
        p.error(
            "--jit-compile compiles the keras engine's decoding: expected "
            f"--engine keras. Received: --engine {args.engine}"
        )
    if args.peer and "fid" not in variants:
        p.error(
            "--peer compares the fid variant: expected fid in --variants. "
            f"Received: --variants {','.join(variants)}"
        )
    if args.peer and args.dtype != "float32":
        p.error(
            "--peer runs float32 only: expected --dtype float32. "
            f"Received: --dtype {args.dtype}"
        )
    return args


def _parse_sweeps(texts):
    """`["passages=1,2", "all"]` -> `{"passages": [1, 2], ...}`."""
    sweeps = {}
    for text in texts:
        name, _, values = text.partition("=")
        if name == "all" and not values:
            sweeps.update({k: list(v) for k, v in SWEEP_DEFAULTS.items()})
            continue
        if name not in SWEEP_DEFAULTS:
            raise ValueError(
                "--sweep: expected NAME or NAME=V1,V2,... with NAME one of "
                f"{list(SWEEP_DEFAULTS)} or 'all'. Received: {text!r}"
            )
        if not values:
            sweeps[name] = list(SWEEP_DEFAULTS[name])
            continue
        try:
            parsed = sorted({int(v) for v in values.split(",")})
        except ValueError:
            parsed = []
        if not parsed or parsed[0] < 1:
            raise ValueError(
                f"--sweep {name}: expected positive integers such as "
                f"{name}=1,2,4. Received: {text!r}"
            )
        sweeps[name] = parsed
    return sweeps
