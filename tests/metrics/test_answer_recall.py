from keras_fido.metrics import has_answer


def test_has_answer_matches_whole_normalized_words():
    assert has_answer(["Paris"], "Paris is the capital of France.")
    assert has_answer("new delhi", "The capital of India is New Delhi.")
    assert has_answer(["+33"], "Its calling code is +33.")
    assert not has_answer(["Niger"], "Abuja is the capital of Nigeria.")
    assert not has_answer(["Rome"], "Paris is the capital of France.")


def test_empty_answers_are_never_found():
    assert not has_answer(["the", ""], "the text")
    assert not has_answer([], "anything")
