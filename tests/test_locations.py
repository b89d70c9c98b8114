"""Weights and the default images found from any folder: ``nst_tf.plan.locations`` and the command around it."""

import configparser
import os
import pathlib

import pytest

from nst_tf import NSTError
from nst_tf.app.cli import main
from nst_tf.app.jobs.request import resolve_image
from nst_tf.plan.locations import BUNDLED_IMAGES_DIR
from nst_tf.plan import locations
from nst_tf.plan.locations import download_folder, find_weights, weights_home
from nst_tf.plan.synthetic import write_vgg19_mat
from nst_tf.plan.weights.reader_registry import read_network_weights
from nst_tf.plan.weights.readers import SQUEEZENET_PRESETS
from nst_tf.runs.presets import PRESETS

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAT = "pretrained-model/imagenet-vgg-verydeep-19.mat"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty current folder, and NST_TF_HOME naming ``home`` in it (not made)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NST_TF_HOME", str(tmp_path / "home"))
    return tmp_path


def test_weights_home_is_nst_tf_home_else_the_xdg_cache_else_dot_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_TF_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_home() == str(tmp_path / "mine")
    monkeypatch.delenv("NST_TF_HOME")
    assert weights_home() == str(tmp_path / "xdg" / "nst_tf")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert weights_home() == str(tmp_path / "user" / ".cache" / "nst_tf")


def test_weights_are_found_in_the_current_folder_first_then_in_nst_tf_home(elsewhere):
    assert find_weights(MAT) == MAT  # neither: unchanged, so the reader says it is missing
    home = elsewhere / "home" / "imagenet-vgg-verydeep-19.mat"
    home.parent.mkdir()
    home.write_bytes(b"weights")
    assert find_weights(MAT) == str(home)
    (elsewhere / "pretrained-model").mkdir()
    (elsewhere / MAT).write_bytes(b"weights")
    assert find_weights(MAT) == MAT


def test_a_model_the_user_named_is_taken_as_written(elsewhere):
    home = elsewhere / "home" / "imagenet-vgg-verydeep-19.mat"
    home.parent.mkdir()
    home.write_bytes(b"weights")
    assert find_weights(MAT, given=True) == MAT


def test_downloads_go_to_pretrained_model_where_it_exists_else_to_nst_tf_home(elsewhere):
    assert download_folder() == str(elsewhere / "home")
    (elsewhere / "pretrained-model").mkdir()
    assert download_folder() == "pretrained-model"


@pytest.mark.parametrize(
    "name, network, command",
    [
        ("imagenet-vgg-verydeep-19.mat", "vgg19", "python -m nst_tf.download (see"),
        ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg19", "python -m nst_tf.download --weights keras"),
        ("squeezenet1_1-b8a52dc0.pth", "squeezenet", "python -m nst_tf.download --weights squeezenet"),
    ],
)
def test_missing_weights_name_the_download_command_and_the_places_looked_in(elsewhere, name, network, command):
    with pytest.raises(NSTError) as error:
        read_network_weights(network, f"pretrained-model/{name}")
    message = str(error.value)
    assert f"file not found; download {name} (" in message and f"with: {command}" in message
    assert f"looks for it in pretrained-model/, then in {elsewhere / 'home'} (NST_TF_HOME)" in message
    assert "\n" not in message


def test_the_download_table_names_the_downloaders_files():
    from nst_tf.download import command

    expected = {
        os.path.basename(command.CONFIG.VGG_MODEL): "mat",
        command.KERAS_WEIGHTS_FILE: "keras",
        os.path.basename(command.SQUEEZENET_MODEL): "squeezenet",
    }
    assert {name: choice for name, (choice, _) in locations.DOWNLOADS.items()} == expected


def test_the_default_images_ship_inside_the_package_unchanged():
    for name in ("content.jpg", "style.jpg"):
        assert (pathlib.Path(BUNDLED_IMAGES_DIR) / name).read_bytes() == (ROOT / "images" / name).read_bytes()
    assert pathlib.Path(BUNDLED_IMAGES_DIR) == ROOT / "nst_tf" / "images"
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    patterns = [pattern.strip() for pattern in setup["options.package_data"]["nst_tf"].split(",")]
    shipped = {path.relative_to(ROOT / "nst_tf").as_posix() for p in patterns for path in (ROOT / "nst_tf").glob(p)}
    assert {"images/content.jpg", "images/style.jpg"} <= shipped


def test_image_names_fall_back_to_the_bundled_copies_only_when_not_found_here(elsewhere):
    bundled = os.path.join(BUNDLED_IMAGES_DIR, "style.jpg")
    assert resolve_image("images/style.jpg", "style_image_filename") == bundled
    assert resolve_image("style.jpg", "style_image_filename") == bundled
    (elsewhere / "images").mkdir()
    (elsewhere / "images" / "style.jpg").write_bytes(b"mine")
    assert resolve_image("style.jpg", "style_image_filename") == os.path.join("images", "style.jpg")
    with pytest.raises(NSTError, match="image not found: other/style.jpg"):
        resolve_image("other/style.jpg", "style_image_filename")


def test_the_command_runs_from_any_folder_with_weights_in_nst_tf_home(elsewhere, noise_image, capsys):
    write_vgg19_mat(elsewhere / "home" / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    noise_image(elsewhere / "mycat.jpg", 48, 64, 0)
    argv = ["--content_image_filename", "mycat.jpg", "--epochs", "2", "--max_size", "48", "--print_every", "1"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (elsewhere / "output" / "generated_image.jpg").is_file()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["home", "mycat.jpg", "output"]


def test_the_library_finds_the_weights_from_any_folder_too(elsewhere, noise_image):
    import nst_tf

    write_vgg19_mat(elsewhere / "home" / "imagenet-vgg-verydeep-19.mat", width_divisor=16)
    noise_image(elsewhere / "mycat.jpg", 48, 64, 0)
    assert nst_tf.presets.PRESETS["first_edition"].load_model().name == "vgg19"
    noise_image(elsewhere / "art.jpg", 48, 64, 1)
    result = nst_tf.stylize_image("mycat.jpg", "art.jpg", iterations=2, size=nst_tf.ImageSize(64, 48), progress=False)
    assert result.image.shape == (48, 64, 3) and result.iterations == [0, 1]


def expect_one_line(capsys, argv, *parts):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nst-tf: error: "), err
    for part in parts:
        assert part in err, err


def test_the_squeezenet_presets_named_in_messages_are_the_presets(elsewhere):
    assert SQUEEZENET_PRESETS == tuple(name for name, p in PRESETS.items() if p.config.network == "squeezenet")


def test_squeezenet_weights_given_to_a_vgg_run_say_how_to_run_squeezenet(elsewhere, squeezenet_weights_file, capsys):
    argv = ["--model", str(squeezenet_weights_file), "--epochs", "1", "--max_size", "48"]
    expect_one_line(
        capsys, argv, "is SqueezeNet's weights", "--network squeezenet", "--preset of " + ", ".join(SQUEEZENET_PRESETS)
    )


def test_network_squeezenet_with_vgg_layers_names_the_squeezenet_presets(elsewhere, capsys):
    names = " or ".join(SQUEEZENET_PRESETS)
    expect_one_line(
        capsys,
        ["--network", "squeezenet"],
        "content_layer 'conv4_2' is not a SqueezeNet 1.1 layer",
        f"--preset {names}",
    )
