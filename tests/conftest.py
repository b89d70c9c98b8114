import os

import numpy as np
import pytest
from PIL import Image

from nst_tf import CONFIG, load_vgg_model, read_vgg19_mat
from nst_tf.plan.synthetic import write_vgg19_h5, write_vgg19_mat

# Keep TensorFlow's C++ start-up chatter out of test output; nst_tf imports
# TensorFlow only when a test first uses it, after this line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Tests use 1/16 of the real channel widths (4 ... 32 channels, 256 for fc).
TEST_WIDTH_DIVISOR = 16


def _write_noise_image(path, height, width, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def no_weights_home(tmp_path_factory):
    """NST_TF_HOME names a folder that does not exist, so that no test finds the weights a user keeps in
    ~/.cache/nst_tf (the command looks there after pretrained-model/), nor downloads into it."""
    patch = pytest.MonkeyPatch()
    patch.setenv("NST_TF_HOME", str(tmp_path_factory.getbasetemp() / "no-nst-tf-home"))
    yield
    patch.undo()


@pytest.fixture
def noise_image():
    """``noise_image(path, height, width, seed)``: writes an image of uniform noise (folders made); returns path."""
    return _write_noise_image


@pytest.fixture(scope="session", params=["new", "old"])
def weights_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / f"vgg19_{request.param}.mat"
    return write_vgg19_mat(path, layout=request.param, width_divisor=TEST_WIDTH_DIVISOR, seed=3)


@pytest.fixture(scope="session")
def new_weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg19.mat"
    return write_vgg19_mat(path, layout="new", width_divisor=TEST_WIDTH_DIVISOR, seed=3)


@pytest.fixture(scope="session")
def keras_weights_file(tmp_path_factory):
    """Full-width synthetic Keras notop weights (about 80 MB), as tf.keras.applications.VGG19 needs them."""
    path = tmp_path_factory.mktemp("keras") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return write_vgg19_h5(path, width_divisor=1, seed=3)


@pytest.fixture(scope="session")
def small_keras_weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "vgg19_small.h5"
    return write_vgg19_h5(path, width_divisor=TEST_WIDTH_DIVISOR, seed=3)


@pytest.fixture(scope="session")
def squeezenet_weights_file(tmp_path_factory):
    """torchvision's SqueezeNet 1.1 layout (zip torch.save format), synthetic full-size weights (5 MB)."""
    from nst_tf.plan.weights.squeezenet_reader import write_squeezenet_weights

    return write_squeezenet_weights(tmp_path_factory.mktemp("squeezenet") / "squeezenet1_1.pth", seed=3)


@pytest.fixture(scope="session")
def model(new_weights_file):
    return load_vgg_model(new_weights_file)


@pytest.fixture(scope="session")
def weights(new_weights_file):
    return read_vgg19_mat(new_weights_file)


@pytest.fixture
def strict_float32():
    """TF32 off while a test compares sums at float32 rounding level (GPUs from Ampere on default to TF32)."""
    import tensorflow as tf

    was = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    yield
    tf.config.experimental.enable_tensor_float_32_execution(was)


@pytest.fixture
def rng():
    return np.random.default_rng(20151)


@pytest.fixture
def images(rng):
    """A smooth normalized content image and a noisy style image, (1, 48, 64, 3) float32."""
    y, x = np.mgrid[0:48, 0:64]
    content = (np.stack([2 * x, 3 * y, x + y + 40], axis=2)[None] - CONFIG.MEANS).astype(np.float32)
    style = rng.normal(0, 40, size=(1, 48, 64, 3)).astype(np.float32)
    return content, style


@pytest.fixture
def workspace(tmp_path, rng):
    """A folder with content.png (80x60), style.png (50x50) and style2.png (40x70)."""
    y, x = np.mgrid[0:60, 0:80]
    Image.fromarray(np.stack([x * 3, y * 4, (x + y) * 2], axis=2).astype(np.uint8)).save(tmp_path / "content.png")
    Image.fromarray(rng.integers(0, 256, size=(50, 50, 3), dtype=np.uint8)).save(tmp_path / "style.png")
    Image.fromarray(rng.integers(0, 256, size=(70, 40, 3), dtype=np.uint8)).save(tmp_path / "style2.png")
    return tmp_path


@pytest.fixture
def cli_args(workspace, new_weights_file):
    """``cli_args(*extra, epochs=5, print_every=2)``: a command line for the workspace's images at 64x48."""

    def make(*extra, epochs=5, print_every=2):
        return [
            "--content_image_filename",
            str(workspace / "content.png"),
            "--style_image_filename",
            str(workspace / "style.png"),
            "--model",
            str(new_weights_file),
            "--output_dir",
            str(workspace / "out"),
            "--width",
            "64",
            "--height",
            "48",
            "--epochs",
            str(epochs),
            "--print_every",
            str(print_every),
            *extra,
        ]  # fmt: skip  (option and value on one line)

    return make
