"""The einsum projections that `torch_packed_linears` rewrites."""

import keras
import pytest

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "torch", reason="a torch graph rewrite"
)


@pytest.mark.parametrize(
    "equation, columns",
    [
        ("btd,dnh->btnh", "nh"),
        ("bd,dn->bn", "n"),
        ("btd,dnh->bthn", None),  # Output axes reordered.
        ("btd,ndh->btnh", None),  # Contracts the weight's second axis.
        ("btnh,nhd->btd", None),  # Contracts two axes.
        ("bsd,dkh->bksh", None),  # Output axes interleaved.
        ("...d,dn->...n", None),
        ("btd->bt", None),
    ],
)
def test_projection_einsums(equation, columns):
    from keras_fido.models.torch_packed_linears import _projection_columns

    assert _projection_columns(equation) == columns
