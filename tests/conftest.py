import os

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nst_tf import load_vgg_model, read_vgg19_mat  # noqa: E402
from nst_tf.testing import write_vgg19_mat  # noqa: E402

#: Tests use 1/16 of the real channel widths (4 ... 32 channels, 256 for fc).
TEST_WIDTH_DIVISOR = 16


@pytest.fixture(scope="session", params=["new", "old"])
def weights_file(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / f"vgg19_{request.param}.mat"
    return write_vgg19_mat(path, layout=request.param, width_divisor=TEST_WIDTH_DIVISOR, seed=3)


@pytest.fixture(scope="session")
def new_weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg19.mat"
    return write_vgg19_mat(path, layout="new", width_divisor=TEST_WIDTH_DIVISOR, seed=3)


@pytest.fixture(scope="session")
def model(new_weights_file):
    return load_vgg_model(new_weights_file)


@pytest.fixture(scope="session")
def weights(new_weights_file):
    return read_vgg19_mat(new_weights_file)


@pytest.fixture
def rng():
    return np.random.default_rng(20151)
