"""``pool_embeddings``: subsampling after the phi/g convs (mmcv's order) instead of before them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nlzoo.layers import NonLocalBlock


def _randomised(block: NonLocalBlock) -> NonLocalBlock:
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    return block.eval()


@pytest.mark.parametrize("dims", [2, 3])
def test_pooling_the_embeddings_matches_the_formula(dims: int) -> None:
    block = _randomised(NonLocalBlock(8, dims=dims, instantiation="dot_product", pool_embeddings=True))
    x = torch.randn(2, 8, *(3, 6, 6)[3 - dims :])
    pool = F.max_pool3d if dims == 3 else F.max_pool2d
    kernel = (1, 2, 2) if dims == 3 else (2, 2)
    q = block.conv_theta(x).flatten(2).transpose(1, 2)
    k = pool(block.conv_phi(x), kernel).flatten(2).transpose(1, 2)
    v = pool(block.conv_g(x), kernel).flatten(2).transpose(1, 2)
    y = (q @ k.transpose(1, 2) / k.shape[1]) @ v
    want = x + block.norm(block.conv_out(y.transpose(1, 2).reshape(2, 4, *x.shape[2:])))
    with torch.no_grad():
        torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-5)
        pooled_input = NonLocalBlock(8, dims=dims, instantiation="dot_product").eval()
        pooled_input.load_state_dict(block.state_dict())
        assert not torch.allclose(pooled_input(x), want, atol=1e-3)  # the two orders differ


def test_affinity_reports_the_pooled_key_grid() -> None:
    block = _randomised(NonLocalBlock(8, dims=3, pool_embeddings=True))
    weights, grid = block.affinity(torch.randn(1, 8, 2, 6, 6), [0, 5])
    assert grid == (2, 3, 3) and weights.shape == (1, 2, 18)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 2))


def test_pool_embeddings_needs_subsampling() -> None:
    with pytest.raises(ValueError, match="pool_embeddings=True .* needs subsample=True"):
        NonLocalBlock(8, subsample=False, pool_embeddings=True)
