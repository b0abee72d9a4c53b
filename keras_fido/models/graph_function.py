"""Methods of a preprocessor traced once with `tf.function`."""

import functools

import tensorflow as tf


def graph_function(fn):
    """Compile method `fn` with `tf.function` so tokenizers take their TF
    path; one traced function per preprocessor instance.

    TensorFlow deletes eagerly created resources, the SentencePiece model
    among them, when the global seed is reset (`tf.random.set_seed`, which
    `keras.utils.set_random_seed` calls). A traced function that captured
    the old resource then fails with `NotFoundError`; the tokenizer's model
    is reloaded from its proto and the function traced again, once.
    """
    key = f"_traced_{fn.__name__}"

    def trace(self):
        traced = tf.function(
            functools.partial(fn, self), reduce_retracing=True, autograph=False
        )
        self.__dict__[key] = traced
        return traced

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        traced = self.__dict__.get(key) or trace(self)
        try:
            return traced(*args, **kwargs)
        except tf.errors.NotFoundError as error:
            if "Sentencepiece" not in str(error):
                raise
            self.tokenizer.set_proto(self.tokenizer.proto)
            return trace(self)(*args, **kwargs)

    return wrapper
