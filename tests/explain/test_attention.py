"""Attention maps: the captured block input, the chosen rows of its affinity, and how queries are picked."""

from __future__ import annotations

import itertools

import pytest
import torch

import nlzoo
from nlzoo.explain import attention_map, block_input, find_block, peak_queries, pixel_to_cell
from nlzoo.layers import nonlocal_blocks


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = nlzoo.load("c2d_r18_nl", pretrained=False, num_classes=2)
    for _, block in nonlocal_blocks(model):
        torch.nn.init.normal_(block.norm.weight, std=0.5)
    return model.eval()


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return torch.randn(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(1))


def test_the_hook_captures_what_the_block_receives(model, clip) -> None:
    name, block = find_block(model)
    assert name == "layer2.1_nonlocal"
    seen = []
    handle = model.layer2[1].register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        captured = block_input(model, block, clip)
    finally:
        handle.remove()
    torch.testing.assert_close(captured, seen[0], rtol=0, atol=0)
    assert captured.shape == (1, 128, 2, 8, 8)


def test_weights_are_the_blocks_affinity_rows_for_the_given_pixels(model, clip) -> None:
    amap = attention_map(model, clip, queries=[(0, 0, 0), (3, 63, 10), (2, 20, 40)])
    assert amap.grid == (2, 8, 8) and amap.key_grid == (2, 4, 4)
    assert amap.query_positions() == [(0, 0, 0), (1, 7, 1), (1, 2, 5)]
    _, block = find_block(model)
    expected, _ = block.affinity(block_input(model, block, clip), amap.queries)
    torch.testing.assert_close(amap.weights, expected[0])
    torch.testing.assert_close(amap.weights.sum(1), torch.ones(3))  # softmax rows


def test_top_keys_are_the_largest_weights_as_grid_coordinates(model, clip) -> None:
    amap = attention_map(model, clip, queries=[(1, 5, 5)])
    values, coords = amap.top_keys(3)
    flat = [int(torch.tensor(c) @ torch.tensor([16, 4, 1])) for c in coords[0].tolist()]
    assert values[0].tolist() == amap.weights[0].sort(descending=True).values[:3].tolist()
    assert amap.weights[0, flat].tolist() == values[0].tolist()


def test_peak_queries_are_greedy_by_strongest_weight_and_spread_out(model, clip) -> None:
    _, block = find_block(model)
    features = block_input(model, block, clip)
    n = features[0, 0].numel()
    full, _ = block.affinity(features, torch.arange(n))
    peak = full[0].amax(dim=1)
    chosen = peak_queries(block, features, count=5, min_distance=2, chunk=7)  # chunking must not matter
    coords = [torch.tensor(torch.unravel_index(torch.tensor(q), (2, 8, 8))) for q in chosen.tolist()]
    assert len(chosen) == 5 and chosen[0] == peak.argmax()
    for a, b in itertools.combinations(coords, 2):
        assert (a - b).abs().max() >= 2
    every = [torch.tensor(torch.unravel_index(torch.tensor(p), (2, 8, 8))) for p in range(n)]
    for i, q in enumerate(chosen.tolist()):  # nothing allowed and stronger was passed over
        allowed = [p for p in range(n) if all((every[p] - c).abs().max() >= 2 for c in coords[:i])]
        assert peak[q] == peak[allowed].max()


def test_pixels_map_to_cells_and_bad_queries_are_refused() -> None:
    assert pixel_to_cell((3, 31, 0), (4, 32, 32), (2, 4, 4)) == (1, 3, 0)
    assert pixel_to_cell((15, 16), (32, 32), (4, 4)) == (1, 2)
    with pytest.raises(ValueError, match="outside the input"):
        pixel_to_cell((4, 0, 0), (4, 32, 32), (2, 4, 4))
    with pytest.raises(ValueError, match="needs 3 coordinates"):
        pixel_to_cell((1, 2), (4, 32, 32), (2, 4, 4))


def test_block_errors_name_the_blocks(model, clip) -> None:
    blocks = r"Did you mean 'layer3.1_nonlocal'\? Blocks: layer2.1_nonlocal, layer3.1_nonlocal"
    with pytest.raises(ValueError, match=blocks):
        attention_map(model, clip, block="layer3.1_nonlocl")
    with pytest.raises(ValueError, match="no non-local blocks"):
        find_block(nlzoo.load("c2d_r18", pretrained=False, num_classes=2))
    with pytest.raises(ValueError, match="one input at a time"):
        attention_map(model, clip.expand(2, -1, -1, -1, -1))
