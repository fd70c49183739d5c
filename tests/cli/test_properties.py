"""Property tests over the places that take user input: names, model arguments, CLI arguments, limits, tensors.

Every input either works or fails with an :class:`nlzoo.errors.NlzooError` (or the documented builtin for a
programming error); nothing escapes as an unrelated exception from deep inside.
"""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlzoo
from nlzoo.cli import COMMANDS, build_parser
from nlzoo.cli.argtypes import parse_views
from nlzoo.cli.lightning import recipe_error_message
from nlzoo.errors import ConfigError, LimitError, NlzooError, UnknownArgumentError
from nlzoo.inference.inputs import check_trained
from nlzoo.inference.pose import check_boxes
from nlzoo.layers import NonLocalBlock
from nlzoo.limits import LIMITS, check_limit, limit

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
names = st.one_of(
    st.text(max_size=40),
    st.sampled_from(nlzoo.list_models()).flatmap(lambda n: st.sampled_from([n, n + ".", n + ".x", n.upper()])),
)


@FAST
@given(names)
def test_any_name_is_trained_weights_or_one_nlzoo_error(name: str) -> None:
    try:
        check_trained(name)
    except NlzooError as err:
        assert str(err) and "\n" not in str(err)


@FAST
@given(st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True), st.integers() | st.text(max_size=5) | st.none())
def test_unknown_model_arguments_name_the_key(key: str, value: object) -> None:
    accepted = {"num_classes", "pretrained", "cache_dir", "local_files_only", "revision"}
    if key in accepted or key in _resnet3d_args():
        return
    with pytest.raises(UnknownArgumentError, match=repr(key)) as caught:
        nlzoo.load("c2d_r18", pretrained=False, **{key: value})
    assert isinstance(caught.value, TypeError)  # old `except TypeError` clauses keep working


def _resnet3d_args() -> set[str]:
    import inspect

    from nlzoo.models import ResNet3d

    return set(inspect.signature(ResNet3d).parameters)


@FAST
@given(st.text(max_size=12))
def test_views_parse_to_positive_pairs_or_an_argparse_error(text: str) -> None:
    try:
        clips, crops = parse_views(text)
    except argparse.ArgumentTypeError as err:
        assert "CLIPSxCROPS" in str(err)
    else:
        left, _, right = text.lower().partition("x")
        assert (clips, crops) == (int(left), int(right)) and clips >= 1 and crops >= 1


floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FAST
@given(st.lists(st.tuples(floats, floats, floats, floats).map(list), min_size=1, max_size=4))
def test_person_boxes_are_usable_or_refused(boxes: list[list[float]]) -> None:
    degenerate = any(not all(math.isfinite(v) for v in b) or b[2] <= 0 or b[3] <= 0 for b in boxes)
    if degenerate:
        with pytest.raises(ConfigError, match="is not a person box"):
            check_boxes(boxes)
    else:
        check_boxes(boxes)


@FAST
@given(st.sampled_from(sorted(LIMITS)), st.integers(min_value=0, max_value=10**12))
def test_limits_refuse_exactly_what_is_over(name: str, value: int) -> None:
    if value > limit(name):
        with pytest.raises(LimitError, match=f"NLZOO_MAX_{name.upper()}"):
            check_limit(name, value)
    else:
        check_limit(name, value)


@FAST
@given(st.text(max_size=300), st.lists(st.text(max_size=20), max_size=5))
def test_recipe_errors_are_one_line(message: str, keys: list[str]) -> None:
    line = recipe_error_message(message, keys)
    assert "\n" not in line and line.endswith(("option)", "keys)", "?"))


@FAST
@given(
    dims=st.sampled_from([1, 2, 3]),
    channels=st.integers(2, 6),  # C // 2 inner channels must be >= 1
    batch=st.integers(0, 2),
    size=st.lists(st.integers(0, 5), min_size=3, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.int64, torch.bool]),  # the block's own dtype, or not a float
    wrong_channels=st.booleans(),
)
def test_a_block_returns_its_input_shape_or_says_what_is_wrong(dims, channels, batch, size, dtype, wrong_channels):
    block = NonLocalBlock(channels, dims=dims, subsample=False).eval()
    x = torch.zeros(batch, channels + int(wrong_channels), *size[:dims]).to(dtype)
    try:
        with torch.no_grad():
            y = block(x)
    except (ValueError, TypeError) as err:  # the block's documented refusals, each naming the problem
        assert any(word in str(err) for word in ("channels", "dtype", "empty", "expects", "floating"))
        return
    assert y.shape == x.shape


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_an_empty_batch_passes_through_a_block(dims: int) -> None:  # found by the property above
    x = torch.zeros(0, 4, *[4] * dims)
    assert NonLocalBlock(4, dims=dims).eval()(x).shape == x.shape


TOKENS = st.sampled_from(
    ["--views", "--top-k", "--model", "--box", "--panel-height", "--queries", "--device", "--out", "--source"]
) | st.text(alphabet="0123456789x,.-abc/", max_size=8)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(sorted(COMMANDS)), st.lists(TOKENS, max_size=6))
def test_argument_parsing_accepts_or_exits_2(command: str, tokens: list[str]) -> None:
    parser = build_parser()
    try:
        parser.parse_args([command, *tokens])
    except SystemExit as done:
        assert done.code == 2
