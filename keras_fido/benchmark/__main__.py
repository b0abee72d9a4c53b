"""Command line: `python -m keras_fido.benchmark --help`."""

# ruff: noqa: E402 (TensorFlow's logging is set before it loads)

import json
import os
import shlex
import sys

from keras_fido.utils.console import quiet_native_logs

if __name__ == "__main__":
    quiet_native_logs()  # before TensorFlow loads; not with --verbose

from keras_fido.benchmark.arguments import SWEEP_DEFAULTS  # noqa: F401
from keras_fido.benchmark.arguments import _parse_sweeps  # noqa: F401
from keras_fido.benchmark.arguments import build_parser  # noqa: F401
from keras_fido.benchmark.arguments import parse_args

SUMMARY_KEYS = (
    "variant",
    "encoder_ms_per_sample",
    "decoder_ms_per_sample",
    "total_ms_per_sample",
    "cross_attention_cache_bytes_per_sample",
)


def run(args, argv=None):
    """Runs what `args` asks for; returns (and writes) the result dict."""
    from keras_fido.benchmark import report

    if args.docs_from:
        results = []
        for path in args.docs_from:
            with open(path) as f:
                results.append(json.load(f))
        report.performance_doc(results, args.docs)
        print(f"wrote {args.docs} from {len(results)} runs")
        return {"docs_from": args.docs_from}

    from keras_fido.benchmark.machine import machine_info
    from keras_fido.benchmark.runner import run_variant

    if args.engine == "onnxruntime":
        from keras_fido.benchmark.onnx_engine import run_onnx_variant

        run_variant = run_onnx_variant  # noqa: F811

    setting = dict(
        size=args.size,
        batch_size=args.batch_size,
        passages=args.passages,
        passage_length=args.passage_length,
        output_length=args.output_length,
        dtype=args.dtype,
        repeats=args.repeats,
        decoder_only=args.decoder_only,
    )
    result = {
        "command": "python -m keras_fido.benchmark "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "title": args.title,
        "engine": args.engine,
        "setting": setting,
        "machine": machine_info(),
        "plots": {},
    }
    os.makedirs(args.out_dir, exist_ok=True)

    def plot_path(name):
        path = os.path.join(args.out_dir, f"{name}.png")
        result["plots"][name] = path
        return path

    if args.max_batch:
        result["memory"] = _max_batches(args)
    else:
        _time_ladder(args, setting, result, plot_path, run_variant)

    text = report.markdown_report(result, image_root=args.out_dir)
    print()
    print(text)
    with open(os.path.join(args.out_dir, "table.md"), "w") as f:
        f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.docs:
        report.performance_doc([result], args.docs)
    return result


def _time_ladder(args, setting, result, plot_path, run_variant):
    """Times the ladder, then its peer and sweeps, into `result`."""
    from keras_fido.benchmark import report

    if args.roofline:
        from keras_fido.benchmark import roofline

        print("measuring peak FLOP/s and bandwidth", flush=True)
        result["roofline"] = roofline.measure_machine(
            args.roofline_matmul_size,
            args.roofline_copy_mib,
            batch_size=args.batch_size,
        )

    def ladder(**overrides):
        records = []
        for variant in args.variants:
            record = run_variant(variant, **{**setting, **overrides})
            print(json.dumps({k: record[k] for k in SUMMARY_KEYS}))
            records.append(record)
        return records

    options = {"jit_compile": True} if args.jit_compile else {}
    records = ladder(quantize=args.quantize, beam=args.beam, **options)
    if args.roofline:
        for record in records:
            record["roofline"] = roofline.roofline_bounds(
                record, result["roofline"]
            )
    result["records"] = records
    report.plot_stacked(records, plot_path("time_per_sample"))
    if args.peer:
        result["peer"] = _peer(args, setting, records)
    result["sweeps"] = {}
    for name, values in args.sweep.items():
        sweep = {value: ladder(**{name: value}) for value in values}
        report.plot_sweep(sweep, name, plot_path(f"sweep_{name}"))
        result["sweeps"][name] = {
            "parameter": name,
            "values": values,
            "records": {str(k): v for k, v in sweep.items()},
        }


def _peer(args, setting, records):
    from keras_fido.benchmark.peer import peer_ratios
    from keras_fido.benchmark.peer import run_transformers_fid

    fid = next(r for r in records if r["variant"] == "fid")
    options = {}
    if args.peer == "onnxruntime":
        from keras_fido.benchmark.onnx_peer import run_onnxruntime_fid

        run_transformers_fid = run_onnxruntime_fid  # noqa: F811
        options["quantize"] = args.quantize
    print(f"timing the {args.peer} peer", flush=True)
    peer = run_transformers_fid(
        fid["config"],
        setting["batch_size"],
        setting["passages"],
        setting["passage_length"],
        setting["output_length"],
        repeats=setting["repeats"],
        decoder_only=setting["decoder_only"],
        threads=args.peer_threads,
        **options,
    )
    keys = (
        "encoder_ms_per_sample",
        "decoder_ms_per_sample",
        "total_ms_per_sample",
    )
    peer["keras_fido"] = {key: fid[key] for key in keys}
    peer["ratios"] = peer_ratios(fid, peer)
    _print_ratios(args.peer, peer["ratios"])
    if peer.get("quantized") and fid.get("quantized"):
        quantized = peer["quantized"]
        quantized["keras_fido"] = {
            key: fid["quantized"].get(key) for key in keys
        }
        quantized["ratios"] = peer_ratios(fid["quantized"], quantized)
        _print_ratios(f"{args.peer} ({quantized['mode']})", quantized["ratios"])
    return peer


def _print_ratios(name, ratios):
    print(
        f"keras_fido / {name}: "
        + ", ".join(
            f"{k} {v:.2f}x" for k, v in ratios.items() if v is not None
        ),
        flush=True,
    )


def _max_batches(args):
    from keras_fido.benchmark.memory import max_batch

    results = []
    for variant in args.variants:
        print(f"max batch of {variant}", flush=True)
        result = max_batch(
            variant,
            args.size,
            args.passages,
            args.passage_length,
            args.output_length,
            dtype=args.dtype,
            decoder_only=args.decoder_only,
            quantize=args.quantize,
            budget_gib=args.memory_budget_gib,
            cap=args.max_batch_cap,
            timeout_s=args.memory_timeout_s,
        )
        print(
            json.dumps(
                {
                    k: result[k]
                    for k in ("variant", "max_batch", "cap_hit", "limited_by")
                }
            ),
            flush=True,
        )
        results.append(result)
    methods = sorted({r["method"] for r in results})
    return {
        "budget_gib": args.memory_budget_gib,
        "cap": args.max_batch_cap,
        "timeout_s": args.memory_timeout_s,
        "method": ", ".join(methods),
        "variants": results,
    }


def main(argv=None):
    run(parse_args(argv), argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
