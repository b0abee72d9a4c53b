"""A deterministic BM25 passage retriever built on `bm25s`."""

import numpy as np

from keras_fido.utils.checks import check_positive_int
from keras_fido.utils.extras import import_optional

bm25s = import_optional("bm25s")


class BM25Retriever:
    """Ranks passages for a question with BM25 (Robertson & Zaragoza).

    Passages are indexed as `"{title}. {text}"`. Questions and passages are
    tokenized the same way (`bm25s.tokenize`): lowercased, split into words
    of two or more letters or digits, English stopwords (including question
    words such as "what" and "which") removed. Every
    passage is scored for every question, and ranked by score, highest
    first, with ties broken by passage index, so retrieval is deterministic.

    Args:
        passages: list of dicts with `"text"` and optionally `"title"`.
        k1: float. BM25 term-frequency saturation. Defaults to `1.5`.
        b: float. BM25 length normalization. Defaults to `0.75`.
        stopwords: str or list of str. Passed to `bm25s.tokenize`.
            Defaults to `"en_plus"`, bm25s's longer English list.

    Examples:
    ```python
    retriever = BM25Retriever([
        {"title": "France", "text": "Paris is the capital of France."},
        {"title": "Italy", "text": "Rome is the capital of Italy."},
    ])
    retriever.retrieve(["What is the capital of Italy?"], k=1)
    # [[(1, 0.87...)]]
    ```
    """

    def __init__(self, passages, k1=1.5, b=0.75, stopwords="en_plus"):
        if not isinstance(passages, (list, tuple)) or not passages:
            raise ValueError(
                "`passages` must be a non-empty list of dicts with a 'text' "
                f"key. Received: {type(passages).__name__}"
                + (
                    " of length 0"
                    if isinstance(passages, (list, tuple))
                    else ""
                )
            )
        texts = []
        for i, passage in enumerate(passages):
            if not isinstance(passage, dict) or not isinstance(
                passage.get("text"), str
            ):
                raise ValueError(
                    f"`passages[{i}]` must be a dict with a string 'text'. "
                    f"Received: {passage!r}"
                )
            title = passage.get("title") or ""
            text = passage["text"]
            texts.append(f"{title}. {text}" if title else text)
        self.stopwords = stopwords
        self.num_passages = len(texts)
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index(self.tokenize(texts), show_progress=False)

    def tokenize(self, texts):
        """Tokenizes a list of strings into lists of word strings."""
        return bm25s.tokenize(
            list(texts),
            lower=True,
            stopwords=self.stopwords,
            return_ids=False,
            show_progress=False,
        )

    def scores(self, question):
        """BM25 scores of every passage for one question, float32 `[N]`."""
        tokens = self.tokenize([question])[0]
        tokens = [t for t in tokens if t]
        if not tokens:
            return np.zeros([self.num_passages], "float32")
        return np.asarray(self._bm25.get_scores(tokens), "float32")

    def retrieve(self, questions, k=10):
        """Returns the top `k` passages of each question.

        Args:
            questions: list of str.
            k: int. Passages per question; at most the number of passages.

        Returns:
            For each question, a list of `(passage_index, score)` pairs,
            best first (ties by lower index).
        """
        k = min(check_positive_int("k", k), self.num_passages)
        order_index = np.arange(self.num_passages)
        results = []
        for question in questions:
            scores = self.scores(question)
            # Sort by descending score, then ascending index.
            top = np.lexsort((order_index, -scores))[:k]
            results.append([(int(i), float(scores[i])) for i in top])
        return results
