"""From a config to what `model.fit` needs, with resumption built in.

`prepare(config)` returns a `Run`: the compiled model (under the config's
tf.distribute strategy), the training and validation datasets, the
callbacks, and the epoch to start from. The caller keeps `model.fit`:

    from overfeat_tf.config import load_config
    from overfeat_tf.training import prepare

    run = prepare(load_config("shapes_accurate"))
    run.model.fit(**run.fit_kwargs())

or `run.fit()`, which also runs the distributed loop (`training.loop`)
that `train.strategy="multi_worker"` needs.

Resumption: the training state is checkpointed in `output_dir/checkpoints`
every epoch (and every `checkpoint_every_steps`). `prepare` restores the
newest checkpoint that restores (`resume`: a damaged one is set aside and
reported) and builds the training data from that point, where each
epoch's crops and order are a function of (seed, epoch) only, so a run
killed at any moment and started again replays no step and skips none.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import sys
import tempfile
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

import overfeat_tf as of
from overfeat_tf.config import ExperimentConfig, config_to_dict, save_config
from overfeat_tf.errors import InvalidValueError
from overfeat_tf.training import (
    batches,
    classification,
    detection,
    localization,
    loop,
    resume,
    task,
)
from overfeat_tf.training import callbacks as callback_lib
from overfeat_tf.training import cluster as cluster_lib
from overfeat_tf.training.strategy import check_global_batch, make_strategy

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Run:
    """Everything `model.fit` needs for one training run.

    Attributes:
        config: the experiment's config.
        model: the compiled model that `fit` trains, built under `strategy`:
            the `OverFeat` itself, or for localization its `"boxes"` output
            alone (the regressor's training view).
        network: the `OverFeat` that training produces and `train` saves
            (for localization, the classifier with its regressor).
        strategy: the tf.distribute strategy.
        train_dataset: batches from the step the run resumes at to the
            last epoch's end (a `DistributedDataset` under several
            replicas, with `train.loop="custom"`).
        validation_dataset: validation batches (one pass, for `model.fit`).
        callbacks: checkpoints, NaN guard, learning-rate logging, TensorBoard,
            `history.csv` of the epochs and validation images.
        steps_per_epoch: optimizer steps per epoch.
        initial_epoch: the first epoch to run (> 0 when resuming).
        class_names: the data's class names.
        checkpoint_manager: the `tf.train.CheckpointManager` of the run
            (on a worker other than the chief, a `resume.ScratchManager`).
        initial_step: steps of `initial_epoch` already taken.
        is_chief: whether this process writes the run's files (always, but
            on the workers other than the chief of a multi-worker run).
        loop_validation: one distributed pass of validation batches, fresh
            per call, for the custom loop (None under `model.fit`).
        validation_steps: the steps of that pass.
    """

    config: ExperimentConfig
    model: keras.Model
    network: of.OverFeat
    strategy: tf.distribute.Strategy
    train_dataset: tf.data.Dataset
    validation_dataset: tf.data.Dataset
    callbacks: list
    steps_per_epoch: int
    initial_epoch: int
    class_names: tuple
    checkpoint_manager: tf.train.CheckpointManager
    initial_step: int = 0
    is_chief: bool = True
    loop_validation: Callable[[], object] | None = None
    validation_steps: int | None = None

    def fit_kwargs(self) -> dict:
        """Keyword arguments for `model.fit`."""
        return {
            "x": self.train_dataset,
            "epochs": self.config.train.epochs,
            "initial_epoch": self.initial_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "validation_data": self.validation_dataset,
            "validation_steps": self.config.train.validation_steps,
            "callbacks": self.callbacks,
            "shuffle": False,  # the pipelines shuffle; Keras would warn
        }

    def save(self) -> str:
        """Saves the trained network as `output_dir/model.keras` (returned).

        Under a multi-worker strategy every worker must call it (saving
        reads the replicas' values collectively); the others save to a
        scratch folder that is deleted.
        """
        path = os.path.join(self.config.output_dir, "model.keras")
        synchronized = _synchronize_batch_statistics(self.network, False)
        try:
            if self.is_chief:
                self.network.save(path)
            else:
                with tempfile.TemporaryDirectory(prefix="overfeat-worker-") as tmp:
                    self.network.save(os.path.join(tmp, "model.keras"))
        finally:
            _synchronize_batch_statistics(self.network, synchronized)
        return path

    def fit(self, verbose: int = 1) -> keras.callbacks.History:
        """Trains with `model.fit`, or with the distributed loop when the
        config's `train.loop` resolves to `"custom"`."""
        if not self.config.train.custom_loop:
            return self.model.fit(**self.fit_kwargs(), verbose=verbose)
        return loop.fit(
            self.model,
            self.train_dataset,
            epochs=self.config.train.epochs,
            steps_per_epoch=self.steps_per_epoch,
            initial_epoch=self.initial_epoch,
            initial_step=self.initial_step,
            validation_data=self.loop_validation,
            validation_steps=self.validation_steps,
            callbacks=self.callbacks,
            verbose=verbose if self.is_chief else 0,
        )


def prepare(config: ExperimentConfig) -> Run:
    """Build the model, data and callbacks of `config`, resuming if possible.

    `config.task` picks what is trained: the classifier (`"classify"`), or
    the box regressor on a trained classifier (`"localize"`, see
    `training.localization`).

    Raises:
        ValueError: for a batch that does not split over the replicas, a
            training split smaller than one batch, bad data (see
            `readers`), a localization run without a backbone, or
            checkpoints of another backbone.
    """
    keras.utils.set_random_seed(config.seed)
    train_cfg = config.train
    cluster = None
    if train_cfg.strategy == "multi_worker":
        cluster = cluster_lib.read_tf_config()
    strategy = make_strategy(
        train_cfg.strategy, _worker_settings(config), train_cfg.worker_timeout
    )
    chief = cluster is None or cluster.is_chief
    check_global_batch(train_cfg.batch_size, strategy)
    parts = task_parts(config)
    train_data = parts.train_data
    steps_per_epoch = train_cfg.steps_per_epoch or (
        (train_data.num_examples or 0) // train_cfg.batch_size
    )
    if steps_per_epoch < 1:
        raise InvalidValueError(
            f"The training split {config.data.source}:{config.data.train_split} "
            f"has {train_data.num_examples} examples, fewer than one batch of "
            f"{train_cfg.batch_size}; lower train.batch_size or set "
            "train.steps_per_epoch."
        )

    with strategy.scope():
        model, network = parts.build(steps_per_epoch, strategy)
        model.optimizer.build(model.trainable_variables)
        _synchronize_batch_statistics(network, strategy.num_replicas_in_sync > 1)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def make_checkpoint():
        return tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)

    directory = os.path.join(config.output_dir, "checkpoints")
    frozen = [v.numpy() for v in model.non_trainable_variables]
    # Every worker restores the chief's checkpoint (output_dir is shared);
    # only the chief sets damaged ones aside.
    restored = resume.restore_newest(make_checkpoint, directory, repair=chief)
    if restored and config.task == "localize":
        # Only the regressor trains: the rest must be the backbone's. (Other
        # tasks have non-trainable variables that training moves: the
        # moving statistics of batch normalization.)
        _check_frozen_unchanged(model, frozen, restored, config)
    if restored:
        logger.info("Resuming from %s", restored)
    if chief:
        manager = tf.train.CheckpointManager(
            make_checkpoint(), directory, max_to_keep=3
        )
    else:
        manager = resume.ScratchManager(make_checkpoint(), directory)
    initial_epoch = int(epoch.numpy())
    history = os.path.join(config.output_dir, "history.csv")
    if chief:
        resume.trim_history(history, initial_epoch)
    step = int(model.optimizer.iterations.numpy())
    skip = step - initial_epoch * steps_per_epoch
    if cluster is not None:
        _check_workers_agree(strategy, cluster, step, train_data)

    train_dataset = batches.training_batches(
        config, strategy, parts.train_batches, steps_per_epoch, initial_epoch, skip
    )
    validation_dataset = parts.validation_batches(
        train_cfg.batch_size, strategy.num_replicas_in_sync > 1
    )
    loop_validation = validation_steps = None
    if train_cfg.custom_loop:
        validation_steps = batches.validation_steps(config, parts.validation_data)
        loop_validation = functools.partial(
            batches.distribute,
            strategy,
            train_cfg.batch_size,
            lambda size: parts.validation_batches(size, True).take(
                validation_steps * strategy.num_replicas_in_sync
            ),
        )
        per_replica = train_cfg.batch_size // strategy.num_replicas_in_sync
        loop.build(model, parts.train_batches(per_replica, config.seed).element_spec)
    run_callbacks = [callback_lib.StopOnNaN(manager), callback_lib.LearningRateLogger()]
    if train_cfg.ema_momentum is not None:
        # Validation runs on the averaged weights; checkpoints keep the raw
        # ones (the average is optimizer state), and fit ends on the average.
        run_callbacks.append(keras.callbacks.SwapEMAWeights())
    log_dir = os.path.join(config.output_dir, "tensorboard")
    if chief:  # the files of the run; the other workers only train
        os.makedirs(config.output_dir, exist_ok=True)
        save_config(config, os.path.join(config.output_dir, "config.yaml"))
        run_callbacks += [
            keras.callbacks.TensorBoard(
                log_dir, histogram_freq=train_cfg.histogram_freq
            ),
            # Epoch figures as a table too, appended to when the run resumes.
            # The row is written before the checkpoint that ends its epoch: a
            # kill between the two trains the epoch again (and trim_history
            # drops the row), where the other order would lose the row.
            keras.callbacks.CSVLogger(history, append=True),
        ]
    # Every worker saves: saving reads the replicas' values collectively.
    run_callbacks.append(
        callback_lib.Checkpoints(manager, epoch, train_cfg.checkpoint_every_steps)
    )
    pictures = train_cfg.image_summaries if chief else 0
    if pictures and config.task == "classify":
        images, labels = batches.first_examples(validation_dataset, pictures)
        run_callbacks.append(
            callback_lib.ValidationImages(
                images, labels, train_data.class_names, log_dir
            )
        )
    if pictures and config.task == "detect":
        examples = parts.validation_data.dataset.take(pictures)
        run_callbacks.append(
            callback_lib.DetectionImages(
                list(examples.as_numpy_iterator()),
                train_data.class_names,
                log_dir,
                size=config.data.smallest_side,
            )
        )
    return Run(
        config=config,
        model=model,
        network=network,
        strategy=strategy,
        train_dataset=train_dataset,
        validation_dataset=validation_dataset,
        callbacks=run_callbacks,
        steps_per_epoch=steps_per_epoch,
        initial_epoch=initial_epoch,
        class_names=train_data.class_names,
        checkpoint_manager=manager,
        initial_step=skip,
        is_chief=chief,
        loop_validation=loop_validation,
        validation_steps=validation_steps,
    )


def _synchronize_batch_statistics(network: keras.Model, on: bool) -> bool:
    """Batch normalization on the moments of the global batch (Keras's
    `synchronized`: all-reduced over the replicas), so that replicas train
    what one device would; off in saved models, which then load on any
    backend. Returns whether it was on."""
    layers = [
        layer
        for layer in network.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    was = any(layer.synchronized for layer in layers)
    for layer in layers:
        layer.synchronized = on
    return was


def _worker_settings(config: ExperimentConfig) -> dict:
    """What every worker of a multi-worker run must share: the resolved
    config, but for `data.data_dir` (each machine's own copy)."""
    settings = config_to_dict(config)
    settings["data"].pop("data_dir")
    return settings


def _check_workers_agree(strategy, cluster, step, train_data):
    """Every worker resumed at the same step, on the same training data."""
    names = hashlib.sha256("\n".join(train_data.class_names).encode()).digest()
    facts = [step, train_data.num_examples or 0, int.from_bytes(names[:7], "big")]
    local = tf.constant([facts], tf.int64)
    gather = tf.function(lambda: strategy.gather(strategy.run(lambda: local), 0))
    rows = gather().numpy()
    what = ("resumed at step", "has training examples", "has class names (digest)")
    for column, fact in enumerate(what):
        others = set(rows[:, column].tolist()) - {facts[column]}
        if others:
            raise cluster_lib.WorkerError(
                f"The workers disagree: this one ({cluster.name}) {fact} "
                f"{facts[column]}, another {others.pop()}. "
                "Every worker must read the same data and the chief's "
                "output_dir (a folder they all see, e.g. on NFS)."
            )


_TASKS = {
    "classify": classification.classification_parts,
    "localize": localization.localization_parts,
    "detect": detection.detection_parts,
}


def task_parts(config: ExperimentConfig) -> task.Task:
    """The data and model builder of `config.task` (what `prepare` runs)."""
    return _TASKS[config.task](config)


def _check_frozen_unchanged(model, frozen, checkpoint, config):
    """A resumed regressor must sit on the backbone it was trained on."""
    for variable, before in zip(model.non_trainable_variables, frozen):
        if not np.array_equal(variable.numpy(), before):
            raise InvalidValueError(
                f"The checkpoint {checkpoint} was trained on another backbone "
                f"than localize.backbone={config.localize.backbone} (the frozen "
                f"{variable.path} differs). Use a new output_dir, or delete "
                f"{os.path.dirname(checkpoint)} to start over."
            )


def train(config: ExperimentConfig) -> keras.callbacks.History:
    """`prepare` then `model.fit`; saves `output_dir/model.keras` at the end.

    The progress bar is for a terminal: when stdout is not one (a log file,
    a pipe), fit writes one line per epoch instead.
    """
    run = prepare(config)
    verbose = 1 if sys.stdout.isatty() else 2
    history = run.fit(verbose=verbose)
    run.save()
    return history
