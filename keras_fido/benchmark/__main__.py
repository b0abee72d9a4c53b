"""Command line: `python -m keras_fido.benchmark --help`."""

import argparse
import json
import os
import sys

from keras_fido.benchmark.variants import VARIANTS


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m keras_fido.benchmark",
        description="Encoder and decoder time per sample along FiDO's "
        "ablation ladder (backend from KERAS_BACKEND).",
    )
    p.add_argument(
        "--size",
        default="base",
        help="tiny, small, base, large, xl or xxl (default base)",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--passages", type=int, default=40)
    p.add_argument("--passage-length", type=int, default=256)
    p.add_argument(
        "--output-length",
        type=int,
        default=32,
        help="decoding steps; all are run (no early stop)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "mixed_bfloat16"],
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list from {','.join(VARIANTS)}",
    )
    p.add_argument(
        "--decoder-only",
        action="store_true",
        help="feed random encoder states; time the decoder only",
    )
    p.add_argument(
        "--sweep",
        default=None,
        help="NAME=V1,V2,... with NAME one of passages, "
        "output_length, batch_size: rerun at each value and plot",
    )
    p.add_argument("--json", default=None, help="write the records here")
    p.add_argument(
        "--out-dir",
        default="benchmarks_out",
        help="folder for the markdown table and PNG plots",
    )
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        p.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    args.variants = variants
    return args


def _parse_sweep(text):
    name, _, values = text.partition("=")
    if name not in ("passages", "output_length", "batch_size") or not values:
        raise SystemExit(
            "--sweep must look like passages=10,20,40 (or output_length=, "
            f"batch_size=). Received: {text!r}"
        )
    return name, [int(v) for v in values.split(",")]


def run(args):
    from keras_fido.benchmark import report
    from keras_fido.benchmark.runner import run_variant

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

    def ladder(**overrides):
        records = []
        for variant in args.variants:
            record = run_variant(variant, **{**setting, **overrides})
            print(
                json.dumps(
                    {
                        k: record[k]
                        for k in (
                            "variant",
                            "encoder_ms_per_sample",
                            "decoder_ms_per_sample",
                            "total_ms_per_sample",
                            "cross_attention_cache_bytes_per_sample",
                        )
                    }
                ),
                flush=True,
            )
            records.append(record)
        return records

    os.makedirs(args.out_dir, exist_ok=True)
    records = ladder()
    print()
    print(report.markdown_table(records))
    for line in report.ratio_lines(records):
        print(line)
    report.plot_stacked(
        records, os.path.join(args.out_dir, "time_per_sample.png")
    )
    result = {"records": records}
    if args.sweep:
        name, values = _parse_sweep(args.sweep)
        sweep = {value: ladder(**{name: value}) for value in values}
        report.plot_sweep(
            sweep, name, os.path.join(args.out_dir, f"sweep_{name}.png")
        )
        result["sweep"] = {
            "parameter": name,
            "records": {str(k): v for k, v in sweep.items()},
        }
    with open(os.path.join(args.out_dir, "table.md"), "w") as f:
        f.write(report.markdown_table(records) + "\n\n")
        f.write("\n".join(report.ratio_lines(records)) + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def main(argv=None):
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
