"""The time-to-quality benchmark's recipes are the command lines it prints and docs/recipes.md gives: each parsed
by the command comes back as the recipe's hyperparameters and sizes."""

import dataclasses
import importlib
import pathlib
import shlex
import sys

import pytest

from nst_tf.app.cli import _config, _overriding_the_preset, build_parser, chosen_preset, given_options
from nst_tf.plan.config import StyleTransferConfig
from nst_tf.plan.large_options import LargeImageOptions

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _benchmark():
    saved = sys.modules.pop("bench", None)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("time_to_quality")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
        sys.modules.pop("bench", None)
        if saved is not None:
            sys.modules["bench"] = saved


BENCHMARK = _benchmark()
TABLE = BENCHMARK.recipes() + [BENCHMARK.fast_recipe()]


def _parsed(words):
    """The hyperparameters and large-image options the command takes from ``words``."""
    preset = chosen_preset(words)
    parser = build_parser(preset)
    args = parser.parse_args(words)
    _overriding_the_preset(args, preset, given_options(parser, words))
    large = LargeImageOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LargeImageOptions)})
    return _config(args), large


@pytest.mark.parametrize("recipe", TABLE + BENCHMARK.candidates(), ids=lambda recipe: recipe.name)
def test_each_recipes_options_run_that_recipe(recipe):
    config, large = _parsed(shlex.split(recipe.options()))
    assert config == dataclasses.replace(StyleTransferConfig(), **recipe.config)
    assert large == recipe.large


@pytest.mark.parametrize("recipe", TABLE[1:], ids=lambda recipe: recipe.name)
def test_the_recipes_page_gives_each_recipes_options(recipe):
    assert f"`{recipe.options()}`" in (ROOT / "docs" / "recipes.md").read_text()


def test_style_transfer_pytorchs_sizes_at_the_courses_size():
    crowsonkb = next(recipe for recipe in TABLE if recipe.name == "crowsonkb")
    assert [max(size) for size in crowsonkb.large.sizes(300, 400)] == [141, 200, 283, 400]
