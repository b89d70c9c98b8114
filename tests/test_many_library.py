"""``stylize_many`` and ``Stylizer.run`` refuse wrong arguments with NSTError naming them."""

import numpy as np
import pytest

from nst_tf import NSTError, StyleTransferConfig
from nst_tf.runs.many_images import Finished, Started, Stylizer, stylize_many

CONFIG = StyleTransferConfig(epochs=2, print_every=1, seed=1)
NO_SEED = "seeds must be a sequence with a seed for each content image, or a callable"


@pytest.fixture
def small(rng):
    """A content and a style image, (1, 32, 32, 3) float32 noise."""
    content = rng.normal(0, 40, (1, 32, 32, 3)).astype(np.float32)
    style = rng.normal(0, 40, (1, 32, 32, 3)).astype(np.float32)
    return content, style


@pytest.mark.parametrize("contents, name", [(None, "NoneType"), (5, "int")])
def test_stylize_many_refuses_contents_that_are_not_iterable(model, small, contents, name):
    _, style = small
    with pytest.raises(NSTError, match=f"^contents must be an iterable of content images; got {name}$"):
        list(stylize_many(model, contents, style, CONFIG))


@pytest.mark.parametrize("batch_size", [1, 2])
@pytest.mark.parametrize(
    "seeds, match",
    [
        ([1], rf"^{NO_SEED}; got list without one for content image 1$"),
        ({}, rf"^{NO_SEED}; got dict without one for content image 0$"),
        (5, rf"^{NO_SEED}; got int without one for content image 0$"),
        (["x", 1], r"seeds: content image 0's seed must be a non-negative whole number; got 'x'"),
        ([1, 1.5], r"seeds: content image 1's seed must be a non-negative whole number; got 1\.5"),
        ([-1, 1], r"seeds: content image 0's seed must be a non-negative whole number; got -1"),
        ([True, 1], r"seeds: content image 0's seed must be a non-negative whole number; got True"),
        (lambda index: "x", r"seeds: content image 0's seed must be a non-negative whole number; got 'x'"),
        (lambda index: index - 1, r"seeds: content image 0's seed must be a non-negative whole number; got -1"),
    ],
)  # fmt: skip
def test_stylize_many_refuses_seeds_without_a_whole_number_for_each_image(model, small, seeds, match, batch_size):
    content, style = small
    with pytest.raises(NSTError, match=match):
        list(stylize_many(model, [content, content], style, CONFIG, seeds=seeds, batch_size=batch_size))


@pytest.mark.parametrize("make_objective, name", [(5, "int"), ("StyleCost", "str")])
def test_stylizer_refuses_make_objective_that_is_not_callable(model, small, make_objective, name):
    _, style = small
    match = f"^make_objective must be None or a callable; got {name}$"
    with pytest.raises(NSTError, match=match):
        Stylizer(model, style, CONFIG, make_objective=make_objective)
    with pytest.raises(NSTError, match=match):
        list(stylize_many(model, [], style, CONFIG, make_objective=make_objective))


SHAPE = r"must be a normalized image of shape \(1, height, width, 3\)"


@pytest.mark.parametrize(
    "make_chunk, match",
    [
        (lambda c: None, r"^chunk must be an iterable of \(index, content\) pairs; got NoneType$"),
        (lambda c: 5, r"^chunk must be an iterable of \(index, content\) pairs; got int$"),
        (lambda c: [c], r"^chunk must hold \(index, content\) pairs; got ndarray$"),
        (lambda c: [(0, c, 1)], r"^chunk must hold \(index, content\) pairs; got tuple$"),
        (lambda c: [("a", c)], r"^a chunk's index must be a non-negative whole number; got 'a'$"),
        (lambda c: [(True, c)], r"^a chunk's index must be a non-negative whole number; got True$"),
        (lambda c: [(1.0, c)], r"^a chunk's index must be a non-negative whole number; got 1\.0$"),
        (lambda c: [(-1, c)], r"^a chunk's index must be a non-negative whole number; got -1$"),
        (lambda c: [(0, c[0])], rf"^content image 0 {SHAPE}; got \(32, 32, 3\)$"),
        (lambda c: [(0, c.tolist()[0])], rf"^content image 0 {SHAPE}; got \(32, 32, 3\)$"),
        (lambda c: [(0, "photo.png")], rf"^content image 0 {SHAPE}; got str$"),
        (lambda c: [(0, c * np.nan)], r"^content image 0 holds NaN or infinite values$"),
        (lambda c: [], r"^a chunk holds 1 to 1 content images of one shape$"),
        (lambda c: [(0, c), (1, c)], r"^a chunk holds 1 to 1 content images of one shape$"),
    ],
)
def test_stylizer_run_refuses_what_is_not_index_content_pairs(model, small, make_chunk, match):
    content, style = small
    stylizer = Stylizer(model, style, CONFIG)
    with pytest.raises(NSTError, match=match):
        list(stylizer.run(make_chunk(content), seeds=[3]))


def test_stylizer_run_takes_any_iterable_of_pairs(model, small):
    content, style = small
    stylizer = Stylizer(model, style, CONFIG, batch_size=2)
    items = list(stylizer.run(((index, c) for index, c in enumerate([content, content.tolist()])), seeds=[3, 4]))
    assert items[0] == Started((0, 1))
    assert [item.index for item in items if isinstance(item, Finished)] == [0, 1]


@pytest.mark.parametrize("seeds", [[3, np.int64(4), None], lambda index: 3 + index], ids=["list", "callable"])
def test_stylize_many_with_valid_seeds_finishes_each_image(model, small, seeds):
    content, style = small
    items = list(stylize_many(model, iter([content, content, content]), style, CONFIG, seeds=seeds))
    finished = [item for item in items if isinstance(item, Finished)]
    assert [item.index for item in finished] == [0, 1, 2]
    assert [item.traced for item in finished] == [True, False, False]
    assert all(np.isfinite(item.progress.image).all() for item in finished)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_the_next_content_is_read_only_once_a_full_batch_is_finished(model, small, batch_size):
    content, style = small
    events = []

    def contents():
        for index in range(4):
            events.append(("read", index))
            yield content

    for item in stylize_many(model, contents(), style, CONFIG, batch_size=batch_size):
        if isinstance(item, Finished):
            events.append(("finished", item.index))
    # Each image is read at its turn: a skipped image's note never comes before the last one's result.
    expected = [("read", i) for i in range(batch_size)] + [("finished", i) for i in range(batch_size)]
    assert events[: 2 * batch_size] == expected
