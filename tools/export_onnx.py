"""Export a reader to ONNX: `python tools/export_onnx.py PRESET OUT [--int8]`.

PRESET is a directory written by `FiDOSeq2SeqLM.save_to_preset` (or a
named architecture, random weights, without a tokenizer). Runs under any
KERAS_BACKEND; serve OUT with `keras_fido.export.onnx_reader.OnnxReader`.
"""

import argparse
import json
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="export_onnx")
    parser.add_argument("preset", help="reader preset directory or name")
    parser.add_argument("out_dir", help="directory to write the graphs to")
    parser.add_argument(
        "--int8",
        action="store_true",
        help="int8 weights (onnxruntime quantize_dynamic); reports the "
        "next-token agreement with the float graphs",
    )
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)

    from keras_fido.export.export_onnx import export_onnx
    from keras_fido.models import FiDOSeq2SeqLM

    try:
        reader = FiDOSeq2SeqLM.from_preset(args.preset)
        manifest = export_onnx(
            reader,
            args.out_dir,
            quantize="int8" if args.int8 else None,
            max_length=args.max_length,
            overwrite=args.overwrite,
        )
    except ValueError as error:
        print(f"export_onnx: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({k: manifest[k] for k in ("limits", "quantization")}))
    print(args.out_dir)
    return 0


if __name__ == "__main__":
    quiet_native_logs()  # not with --verbose
    sys.exit(main())
