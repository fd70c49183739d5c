from __future__ import annotations

import pytest
import torch

from nlzoo.layers import NonLocalBlock, PairwiseFunction, get_pairwise, list_pairwise, register_pairwise
from nlzoo.layers.pairwise import base


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


def test_a_new_instantiation_is_one_registered_class(scratch_registry: None) -> None:
    @register_pairwise("uniform_mean")
    class UniformMean(PairwiseFunction):
        """f = 1, C = M: every position receives the mean of g."""

        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return v.mean(1, keepdim=True).expand(-1, q.shape[1], -1)

        def weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return q.new_full((q.shape[0], q.shape[1], k.shape[1]), 1.0 / k.shape[1])

    assert "uniform_mean" in list_pairwise()
    assert get_pairwise("uniform_mean") is UniformMean
    block = NonLocalBlock(4, dims=2, instantiation="uniform_mean", subsample=False)
    torch.nn.init.ones_(block.norm.weight)
    x = torch.randn(1, 4, 3, 3)
    y = block(x)
    g = block.conv_g(x).mean((2, 3), keepdim=True).expand(-1, -1, 3, 3)
    torch.testing.assert_close(y, x + block.norm(block.conv_out(g)))


def test_duplicate_and_wrong_type_registrations_raise(scratch_registry: None) -> None:
    with pytest.raises(ValueError, match="'dot_product' is already registered"):
        register_pairwise("dot_product")(type("Other", (PairwiseFunction,), {}))
    with pytest.raises(TypeError, match="expects a PairwiseFunction subclass"):
        register_pairwise("thing")(int)  # type: ignore[arg-type]


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown non-local instantiation 'dotproduct'\. Did you mean 'dot_product'"):
        get_pairwise("dotproduct")
