"""Documents to pretrain on: tfds C4 when prepared, else local text."""

import itertools

import tensorflow as tf

C4 = "c4/en"


def text_documents(paths, paragraphs=False):
    """Yields the documents of text files, stripped.

    Args:
        paths: list of text file paths.
        paragraphs: bool. A document is a blank-line separated paragraph
            (its lines joined by spaces) rather than a line.
    """
    for path in paths:
        with open(path, encoding="utf-8") as file:
            if not paragraphs:
                for line in file:
                    if line.strip():
                        yield line.strip()
                continue
            block = []
            for line in itertools.chain(file, [""]):
                if line.strip():
                    block.append(line.strip())
                elif block:
                    yield " ".join(block)
                    block = []


def c4_builder(data_dir=None):
    """The tfds C4 builder, or `None` when C4 is not prepared in
    `data_dir` (tfds' default directory when `None`)."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(C4, data_dir=data_dir)
    return builder if builder.is_prepared() else None


def how_to_prepare_c4(data_dir=None):
    """The message for a missing C4: the `tfds build` command to run."""
    data_dir = data_dir or "~/tensorflow_datasets"
    return (
        f"tfds {C4} is not prepared in {data_dir}. Prepare it once with\n"
        f"    tfds build {C4} --data_dir {data_dir}\n"
        "(C4 is built from Common Crawl with Apache Beam, see "
        "https://www.tensorflow.org/datasets/catalog/c4), or pretrain on "
        "local text with --text FILE [FILE ...]."
    )


def documents_dataset(source, seed, paragraphs=False):
    """An endless, shuffled `tf.data.Dataset` of document strings.

    Args:
        source: `("c4", builder)` (its train split) or `("text", paths)`.
        seed: int, the shuffling seed.
        paragraphs: bool, for text files: see `text_documents`.
    """
    kind, where = source
    if kind == "c4":
        import tensorflow_datasets as tfds

        dataset = where.as_dataset(
            split="train",
            shuffle_files=True,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        ).map(lambda example: example["text"])
    elif kind != "text":
        raise ValueError(
            '`source` must be ("c4", builder) or ("text", paths). '
            f"Received: source={source!r}"
        )
    elif paragraphs:
        dataset = tf.data.Dataset.from_generator(
            lambda: text_documents(where, paragraphs),
            output_signature=tf.TensorSpec([], tf.string),
        )
    else:
        dataset = (
            tf.data.TextLineDataset(where)
            .map(tf.strings.strip)
            .filter(lambda line: tf.strings.length(line) > 0)
        )
    return dataset.shuffle(10000, seed=seed).repeat()
