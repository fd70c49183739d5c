"""Where a non-local block looks: the affinities of chosen query positions, as in the paper's Figure 3.

One forward pass runs with a hook on the chosen block that keeps its input; the block's
:meth:`~nlzoo.layers.NonLocalBlock.affinity` then computes only the rows of the chosen queries, so even
large inputs never materialise the full N x M map. Queries are given, or picked as the positions whose
attention is most concentrated (largest single weight), kept apart from each other so they show different
things.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..layers import NonLocalBlock, nonlocal_blocks


@dataclass(frozen=True)
class AttentionMap:
    """The affinities of some query positions of one non-local block, for one input.

    Attributes:
        block: the block's module name (e.g. ``"layer2.1_nonlocal"``).
        grid: the block's positional shape, (T', H', W') or (H', W').
        key_grid: the positional shape of its keys (smaller when the block subsamples).
        queries: (Q,) flat query indices into ``grid`` (row-major).
        weights: (Q, M) normalised weights ``f(x_i, x_j) / C(x)`` over the M = prod(key_grid) keys.
    """

    block: str
    grid: tuple[int, ...]
    key_grid: tuple[int, ...]
    queries: torch.Tensor
    weights: torch.Tensor

    def query_positions(self) -> list[tuple[int, ...]]:
        """The queries as grid coordinates."""
        return [tuple(int(c) for c in torch.unravel_index(q, self.grid)) for q in self.queries]

    def top_keys(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` strongest keys of each query: (values (Q, k), key grid coordinates (Q, k, dims))."""
        values, flat = self.weights.topk(min(k, self.weights.shape[1]), dim=1)
        coords = torch.stack(torch.unravel_index(flat, self.key_grid), dim=-1)
        return values, coords


def find_block(model: nn.Module, name: str | None = None) -> tuple[str, NonLocalBlock]:
    """The non-local block called ``name``, or the model's first one (res3's in the paper's networks).

    Raises:
        ValueError: the model has no non-local block, or none of that name (the message lists them).
    """
    blocks = dict(nonlocal_blocks(model))
    if not blocks:
        raise ConfigError(f"{type(model).__name__} has no non-local blocks; explain a model whose name ends in _nl")
    if name is None:
        return next(iter(blocks.items()))
    if name not in blocks:
        close = difflib.get_close_matches(name, blocks, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"no non-local block {name!r}.{hint} Blocks: {', '.join(blocks)}")
    return name, blocks[name]


@torch.no_grad()
def block_input(model: nn.Module, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tensor ``block`` receives when ``model(x)`` runs (captured by a forward pre-hook)."""
    captured: list[torch.Tensor] = []
    handle = block.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach()))
    try:
        model(x)
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError("the chosen block did not run during the forward pass")
    return captured[0]


@torch.no_grad()
def peak_queries(
    block: NonLocalBlock, features: torch.Tensor, *, count: int, min_distance: int = 2, chunk: int = 1024
) -> torch.Tensor:
    """The ``count`` positions with the most concentrated attention, at least ``min_distance`` cells apart.

    Every query's largest weight is computed in chunks of ``chunk`` rows (never the full map); positions are
    then taken greedily by that score, skipping any closer than ``min_distance`` (Chebyshev distance over
    the grid) to one already taken.
    """
    grid = features.shape[2:]
    n = features[0, 0].numel()
    peaks = torch.cat(
        [block.affinity(features, torch.arange(s, min(s + chunk, n)))[0][0].amax(dim=-1) for s in range(0, n, chunk)]
    )
    coords = torch.stack(torch.unravel_index(torch.arange(n), tuple(grid)), dim=-1)
    chosen: list[int] = []
    for index in peaks.argsort(descending=True).tolist():
        if all((coords[index] - coords[c]).abs().max() >= min_distance for c in chosen):
            chosen.append(index)
            if len(chosen) == count:
                break
    return torch.tensor(chosen, dtype=torch.long)


def pixel_to_cell(point: Sequence[int], input_shape: Sequence[int], grid: Sequence[int]) -> tuple[int, ...]:
    """The grid cell holding an input position ((t, y, x) in a clip or (y, x) in an image).

    Raises:
        ValueError: wrong number of coordinates, or a point outside the input.
    """
    if len(point) != len(input_shape):
        names = "t,y,x (frame, row, column)" if len(input_shape) == 3 else "y,x (row, column)"
        raise ConfigError(f"a query needs {len(input_shape)} coordinates {names}; got {tuple(point)}")
    if any(not 0 <= p < s for p, s in zip(point, input_shape, strict=True)):
        raise ConfigError(f"query {tuple(point)} is outside the input of shape {tuple(input_shape)}")
    return tuple(p * g // s for p, g, s in zip(point, grid, input_shape, strict=True))


@torch.no_grad()
def attention_map(
    model: nn.Module,
    x: torch.Tensor,
    *,
    block: str | None = None,
    queries: Sequence[Sequence[int]] | None = None,
    num_queries: int = 4,
) -> AttentionMap:
    """Affinities of one block of ``model`` for a single input ``x`` (1, C, T, H, W) or (1, C, H, W).

    Args:
        model: a network with non-local blocks, in eval mode.
        x: one normalised input, as the model takes it.
        block: the block's module name; default the first (see :func:`find_block`).
        queries: input positions, (t, y, x) per query for clips or (y, x) for images, in pixels of ``x``;
            default: the ``num_queries`` positions with the most concentrated attention.
        num_queries: how many queries to pick when none are given.

    Returns:
        The chosen queries and their weights over all keys.

    Raises:
        ValueError: a batch of several inputs, an unknown block, or a query outside the input.
    """
    if x.shape[0] != 1:
        raise ValueError(f"explain one input at a time; got a batch of {x.shape[0]}")
    name, nl_block = find_block(model, block)
    if nl_block.dims not in (2, 3):
        raise ConfigError(f"{name} is a {nl_block.dims}-D block; attention maps are drawn for 2-D and 3-D blocks")
    features = block_input(model, nl_block, x)
    grid = tuple(features.shape[2:])
    if queries:
        cells = [pixel_to_cell(q, x.shape[2:], grid) for q in queries]
        flat = torch.tensor([int(np.ravel_multi_index(c, grid)) for c in cells], dtype=torch.long)
    else:
        flat = peak_queries(nl_block, features, count=num_queries)
    weights, key_grid = nl_block.affinity(features, flat.to(features.device))
    return AttentionMap(name, grid, tuple(key_grid), flat.cpu(), weights[0].float().cpu())
