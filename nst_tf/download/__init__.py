"""``python -m nst_tf.download``: fetch the network weights (VGG-19's, SqueezeNet's) and verify them.

``--weights mat`` (the default): MatConvNet's imagenet-vgg-verydeep-19.mat, the course's first edition.
``--weights keras``: Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, the second edition's, copied from
Keras' own cache (``$KERAS_HOME/models`` or ``~/.keras/models``) when a good copy is there, downloaded otherwise.
``--weights squeezenet``: torchvision's squeezenet1_1-b8a52dc0.pth, SqueezeNet 1.1, CS231n's network.

The tests never leave 127.0.0.1. Each address of ``MAT_SOURCES``, ``KERAS_SOURCES`` or ``SQUEEZENET_SOURCES`` (or
``--url``, repeated) is tried in order; dropped connections are resumed with HTTP range requests and retried with
growing delays. The bytes go to nst_tf's own partial file, ``.NAME.nst_tf-partial`` beside the destination, with
its record ``.NAME.nst_tf-partial.json`` (see ``partial``): a signal keeps them, and the next run resumes. No more
bytes are written than the file's recorded size or, while it is unknown, the server's Content-Length and a ceiling
(``MAT_CEILING``, ...). The file becomes the destination only once its hash (MD5 for the VGG files, SHA-256 for
SqueezeNet's) is a known one, and never replaces an existing file. Every failure is one line.

The names below live in ``command``, loaded on first use, so that ``python -m nst_tf.download`` handles signals
from its first moment (``__main__``).
"""

__all__ = (
    "CHUNK KERAS_CEILING KERAS_KNOWN_MD5 KERAS_MIRROR KERAS_SOURCES KERAS_URL KNOWN_MD5 KNOWN_SIZES MAT_CEILING "
    "MAT_SOURCES SQUEEZENET_CEILING SQUEEZENET_HASH_PREFIX SQUEEZENET_KNOWN_SHA256 SQUEEZENET_MODEL "
    "SQUEEZENET_SOURCES SQUEEZENET_URL URL DownloadError Policy download fetch_keras_weights "
    "fetch_squeezenet_weights keras_cache_dir main partial_paths"
).split()


def __getattr__(name):
    if name in __all__:
        from . import command

        return getattr(command, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
