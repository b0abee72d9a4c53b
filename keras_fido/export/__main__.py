"""Command line: `python -m keras_fido.export PRESET_DIR OUT_DIR`."""

import argparse
import sys

from keras_fido.utils.console import add_verbose_flag
from keras_fido.utils.console import quiet_native_logs


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="export_saved_model",
        description=(
            "Export a FiDO reader preset (a directory written by "
            "FiDOSeq2SeqLM.save_to_preset) as a SavedModel for TF Serving: "
            "OUT_DIR/<version>/saved_model.pb, with the signatures "
            "'serving_default' (question, titles, texts -> answers) and "
            "'serving_tokens' (token ids -> answers), and for a reader "
            "with passage memory 'serving_memory' and "
            "'serving_memory_tokens' (stored memory -> answers). Runs "
            "under any KERAS_BACKEND: the preset is loaded under TensorFlow."
        ),
    )
    parser.add_argument("preset_dir", help="the reader's preset directory")
    parser.add_argument(
        "out_dir", help="the model base path that TF Serving watches"
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number (default: one more than the largest in OUT_DIR)",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="decoder length, start token included (default: the "
        "preprocessor's decoder_sequence_length)",
    )
    parser.add_argument(
        "--no-jit-compile",
        dest="jit_compile",
        action="store_false",
        help="do not XLA-compile the decoding loop (for a TF Serving on CPU "
        "started without --xla_cpu_compilation_enabled=true)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing version directory",
    )
    add_verbose_flag(parser)
    args = parser.parse_args(argv)

    from keras_fido.export.export_preset import export_preset

    try:
        path = export_preset(
            args.preset_dir,
            args.out_dir,
            version=args.version,
            max_length=args.max_length,
            jit_compile=args.jit_compile,
            overwrite=args.overwrite,
        )
    except (ValueError, RuntimeError) as error:
        print(f"export_saved_model: error: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    quiet_native_logs()  # not with --verbose
    sys.exit(main())
