"""A training run of a fast style model: ``TrainingRun`` builds the network, the objective and Adam, resumes from
the output folder's checkpoints, steps, checkpoints, and saves the model (``save_fast_model``) at the end.

The output folder (``plan.fast_model``'s layout)::

    <output_dir>/checkpoints/            tf.train.CheckpointManager's checkpoints (network, Adam, step)
    <output_dir>/checkpoints/training.json   the settings they were trained with: a resume must match them
    <output_dir>/fast_model.json, weights.weights.h5   the model, at the end

A folder holding checkpoints of the same settings is resumed from its latest checkpoint (on to ``iterations``,
which may be more than before); one holding other settings, or other files, is refused before anything is made.
"""

import dataclasses
import json
import os

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..loop.trainer import Trainer
from ..objective.training_cost import TrainingCost
from ..plan.fast_model import FastModelDescription, FastModelFolder
from ..plan.networks.network_registry import get_network
from ..plan.training_options import SETTINGS_FILE, style_names, training_settings
from ..plan.weights.reader_registry import read_network_weights
from ..tensors.images import fit_style, read_image, reshape_and_normalize_image
from ..tensors.modules import build_network
from ..tensors.transform_net import build_transform_net
from .fast_models import FastModel, save_fast_model
from .training_data import centre_crops, training_batches

#: Checkpoints kept: the latest few (each holds the network and Adam's two moments).
KEEP_CHECKPOINTS = 3


class TrainingRun:
    """One training of a fast style model (see the module).

    Args:
        options: a ``TrainConfig``; config: a ``StyleTransferConfig`` (the objective's settings).
        style_paths: the style images (each a style of the network, in order).
        images: a ``runs.training_data.TrainingImages`` (the content images).
        weights_path, pooling: the loss network's weights file and pooling.
        output_dir: the folder (``resumable`` checked it); strategy: a ``tf.distribute.Strategy`` (default: the
            default strategy, one device).

    ``prepare()`` loads and builds everything (``NSTError`` for an unreadable style or weights file) and
    restores the latest checkpoint (``first_step``; ``saved_step``: the latest checkpoint's step, or None);
    ``steps()`` yields each step's ``TrainProgress``; ``save_checkpoint()``; ``finish()`` saves the model;
    ``samples()`` stylizes the sample images; ``failed_files``: the content images that failed to decode during
    the steps (each passed over).
    """

    def __init__(self, options, config, style_paths, images, weights_path, pooling, output_dir, strategy=None):
        self.options, self.config, self.images = options, config, images
        self.style_paths, self.weights_path, self.pooling = list(style_paths), weights_path, pooling
        self.folder = FastModelFolder(output_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.settings = training_settings(options, config, self.style_paths, pooling)
        self.description = FastModelDescription(options.spec(len(self.style_paths)), style_names(self.style_paths))
        self.first_step, self.saved_step = 0, None  # the step of the latest checkpoint: None before one
        self.failed_files = []  # content images that failed to decode past their header, once per reading

    def _style_images(self):
        side = self.options.style_side  # each style at its own aspect ratio, shorter side ``side``
        normalization = self.config.normalization
        return [
            reshape_and_normalize_image(fit_style(read_image(path), None, "stretch", style_size=side), normalization)
            for path in self.style_paths
        ]

    def prepare(self):
        """Builds the run and restores its latest checkpoint; returns the step it starts after (0: a new run)."""
        styles = self._style_images()
        network = get_network(self.config.network)
        weights = read_network_weights(network, self.weights_path)
        tf.keras.utils.set_random_seed(self.options.seed)  # the network's initial weights
        with self.strategy.scope():
            loss_network = build_network(network, weights, tf.float32, self.pooling)
            self.objective = TrainingCost(loss_network, styles, self.config)
            self.net = build_transform_net(self.description.spec)
            self.optimizer = tf.keras.optimizers.Adam(self.options.learning_rate)
            self.optimizer.build(self.net.trainable_variables)  # its moments exist before a restore fills them
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        checkpoint = tf.train.Checkpoint(net=self.net, optimizer=self.optimizer, step=self.step)
        self.manager = tf.train.CheckpointManager(checkpoint, self.folder.checkpoints, KEEP_CHECKPOINTS)
        if self.manager.latest_checkpoint:
            checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        self.first_step = int(self.step.numpy())
        self.saved_step = self.first_step if self.manager.latest_checkpoint else None
        self.trainer = Trainer(
            self.net,
            self.objective,
            self.optimizer,
            self.step,
            self.options.batch_size,
            self.options.seed,
            self.strategy,
        )
        return self.first_step

    def steps(self):
        """Yields each step's ``TrainProgress``, from the one after the latest checkpoint to ``iterations``."""
        options = self.options
        if self.first_step >= options.iterations:
            return
        batches = training_batches(
            self.images.paths, options.image_size, options.batch_size, options.seed, self.first_step,
            failures=self.failed_files,
        )  # fmt: skip
        yield from self.trainer.run(batches, options.iterations)

    @property
    def steps_done(self):
        return int(self.step.numpy())

    def save_checkpoint(self):
        """Saves a checkpoint of the steps done (and the settings beside it); returns its path."""
        os.makedirs(self.folder.checkpoints, exist_ok=True)
        settings = os.path.join(self.folder.checkpoints, SETTINGS_FILE)
        if not os.path.exists(settings):
            with open(settings + ".tmp", "w", encoding="utf-8") as file:
                json.dump(self.settings, file, indent=2)
            os.replace(settings + ".tmp", settings)
        path = self.manager.save(checkpoint_number=self.steps_done)
        self.saved_step = self.steps_done
        return path

    def model(self):
        """The ``FastModel`` of the network as trained so far, its description's ``training`` filled."""
        training = {
            "objective": self.settings["objective"],
            "styles": list(self.description.style_names),
            "style_files": [os.path.basename(path) for path in self.style_paths],
            "image_size": self.options.image_size,
            "batch_size": self.options.batch_size,
            "learning_rate": self.options.learning_rate,
            "iterations": self.steps_done,
            "seed": self.options.seed,
            "content_images": len(self.images.paths),
            "pooling": self.pooling,
        }
        return FastModel(self.net, dataclasses.replace(self.description, training=training))

    def finish(self, export=True):
        """Saves a last checkpoint and the model (``save_fast_model``; with ``export``, its SavedModel and
        TensorFlow Lite copies too, ``runs.fast_export``); returns the ``FastModel``."""
        if self.saved_step != self.steps_done:
            self.save_checkpoint()
        model = self.model()
        save_fast_model(self.folder.path, model)
        if export:
            try:  # the export's module, when this nst_tf has it
                from .fast_export import export_fast_model
            except ImportError:
                export_fast_model = None
            if export_fast_model is not None:
                export_fast_model(model, self.folder.path)
        return model

    def samples(self, count=4):
        """The first ``count`` content images centre-cropped and stylized with each style, image major:
        (count * styles, S, S, 3) uint8."""
        paths = self.images.paths[:count]
        contents = centre_crops(paths, self.options.image_size)
        styles = self.description.spec.styles
        images = tf.repeat(contents, styles, axis=0)
        weights = tf.tile(tf.eye(styles), [len(paths), 1])
        return tf.cast(tf.round(self.net([images, weights], training=False)), tf.uint8).numpy()
