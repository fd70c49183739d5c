"""Pictures of attention maps: layout sizes, where the heat goes, and the animation's frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlzoo.explain import AttentionMap, render_animation, render_figure
from nlzoo.explain.render import QUERY_COLOURS, PanelGrid, frame_of_step


def _map(weights: torch.Tensor, queries: list[int]) -> AttentionMap:
    return AttentionMap("b", (2, 4, 4), (2, 2, 2), torch.tensor(queries), weights)


@pytest.fixture
def frames() -> np.ndarray:
    return np.full((8, 32, 48, 3), 40, np.uint8)  # 8 frames of 32 x 48, dark grey


def test_figure_is_one_column_per_time_step_and_one_row_per_query_plus_arrows(frames) -> None:
    amap = _map(torch.full((3, 8), 1 / 8), [0, 5, 31])
    image = render_figure(frames, amap, panel_height=64, gap=6)
    # panels 96 x 64 (the frames' 3:2 aspect), 2 time steps, 1 arrow row + 3 heat rows
    assert image.size == (2 * 96 + 6, 4 * 64 + 3 * 6) == PanelGrid(2, 4, (96, 64), 6).size


def test_heat_follows_the_weights(frames) -> None:
    weights = torch.zeros(1, 8)
    weights[0, 7] = 1.0  # all attention on key (t=1, y=1, x=1): the bottom-right quarter of the second frame
    image = np.asarray(render_figure(frames, _map(weights, [0]), panel_height=64, gap=6)).astype(int)
    heat_row = image[70:134]  # row 1: the query's heat map
    tinted = heat_row[48:64, 102 + 72 : 102 + 96]  # bottom-right of the second panel
    untouched = heat_row[0:16, 102 : 102 + 24]  # top-left of the second panel
    assert np.abs(untouched - 40).max() == 0
    colour = np.array(QUERY_COLOURS[0])
    assert np.abs(tinted.mean((0, 1)) - colour).sum() < np.abs(40 - colour).sum() / 3  # mostly the query's colour
    arrows = image[:64]
    assert (np.abs(arrows - 40).sum(-1) > 60).any()  # something drawn on the arrow row


def test_animation_has_one_picture_per_frame(frames) -> None:
    pictures = render_animation(frames, _map(torch.full((2, 8), 1 / 8), [0, 17]), panel_height=64)
    assert len(pictures) == 8 and {p.size for p in pictures} == {(96, 64)}


def test_time_steps_show_the_middle_of_their_frames() -> None:
    assert [frame_of_step(t, 4, 8) for t in range(4)] == [1, 3, 5, 7]
    assert [frame_of_step(t, 2, 8) for t in range(2)] == [2, 6]
    assert frame_of_step(0, 1, 1) == 0
