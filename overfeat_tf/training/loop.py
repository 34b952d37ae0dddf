"""`model.fit` for the strategies Keras 3's fit cannot run.

Keras 3's fit fails under `tf.distribute.MultiWorkerMirroredStrategy`
(keras-team/keras#20585): it builds the metrics on the first batch
averaged eagerly with `strategy.reduce`, which a batch spread over workers
cannot be. This loop is fit's own sequence, over public Keras pieces:

- each step is the compiled model's `train_step` (validation: `test_step`)
  run by `strategy.run` in a `tf.function`, so the loss, its scaling, the
  optimizer, its all-reduce and EMA are exactly what `model.compile` set.
  The compiled losses average over the replica's batch and divide by the
  replicas in sync (`keras.losses.Loss` under tf.distribute), which is
  `tf.nn.compute_average_loss` with the global batch, since the batches
  split evenly; the optimizer sums the replicas' gradients. Scaling the
  loss again, or all-reducing the gradients here, would count them twice;
- the logs are the model's metrics read across replicas (Keras metric
  variables are summed on read over every replica of every worker);
- the callbacks are called at fit's points with fit's logs, so
  checkpoints, the NaN stop, TensorBoard, the CSV log, EMA swapping and
  the progress bar behave as under fit.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from overfeat_tf.training.cluster import WorkerError

# What a collective step raises when another worker is gone.
_LOST_PEER = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
)


def fit(
    model: keras.Model,
    dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    initial_epoch: int = 0,
    initial_step: int = 0,
    validation_data=None,
    validation_steps: int | None = None,
    callbacks=(),
    verbose: int = 1,
) -> keras.callbacks.History:
    """Trains `model` as `model.fit` would, under `model.distribute_strategy`.

    Args:
        model: a compiled model, built under its strategy's scope.
        dataset: the training batches of every remaining step (a
            `tf.distribute.DistributedDataset` under several replicas).
        epochs: the epoch to stop before.
        steps_per_epoch: steps of a whole epoch.
        initial_epoch: the first epoch to run.
        initial_step: steps of `initial_epoch` already taken (a run resumed
            mid-epoch): that epoch runs only the rest.
        validation_data: a callable returning one pass of validation batches
            (a fresh iterable per epoch), or None.
        validation_steps: the steps of one validation pass (every worker
            must take as many).
        callbacks: Keras callbacks.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Returns:
        The `History` of the epochs run.

    Raises:
        WorkerError: another worker of a multi-worker run is gone.
    """
    strategy = model.distribute_strategy
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history],
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
        model=model,
    )
    train_step = _distributed(model, model.train_step, strategy)
    test_step = _distributed(model, model.test_step, strategy)
    iterator = iter(dataset)
    model.stop_training = False
    callback_list.on_train_begin()
    logs = epoch_logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        first = initial_step if epoch == initial_epoch else 0
        for step in range(first, steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            with _peers_alive(epoch, step):
                logs = _python(train_step(iterator))
            callback_list.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        if validation_data is not None:
            with _peers_alive(epoch, "validation"):
                validation_logs = _evaluate(
                    model, test_step, validation_data(), validation_steps, callback_list
                )
            epoch_logs.update({f"val_{k}": v for k, v in validation_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(epoch_logs)
    return history


def _evaluate(model, test_step, batches, steps, callback_list) -> dict:
    """One validation pass, as fit's `evaluate(callbacks=...)` runs it."""
    model.reset_metrics()
    callback_list.on_test_begin()
    logs = {}
    iterator = iter(batches)
    for step in range(steps):
        callback_list.on_test_batch_begin(step)
        logs = _python(test_step(iterator))
        callback_list.on_test_batch_end(step, logs)
    callback_list.on_test_end(logs)
    return logs


def _distributed(model, step, strategy):
    """`step(batch)` on every replica; returns the model's metrics, reduced.

    With `model.jit_compile` the per-replica step is compiled with XLA, as
    fit compiles it.
    """
    if model.jit_compile:
        step = tf.function(step, jit_compile=True, reduce_retracing=True)

    @tf.function
    def run(iterator):
        strategy.run(step, args=(next(iterator),))
        return model.get_metrics_result()

    return run


@contextlib.contextmanager
def _peers_alive(epoch, step):
    """Turns a collective's failure into one line saying what to do."""
    try:
        yield
    except _LOST_PEER as error:
        first = (str(error).strip().splitlines() or [""])[0]
        raise WorkerError(
            f"Another worker stopped answering at epoch {epoch + 1}, step {step} "
            f"({type(error).__name__}: {first}). Start every worker again with "
            "the same command: the run resumes from its last checkpoint."
        ) from None


def _python(logs) -> dict:
    return {name: float(value) for name, value in logs.items()}


def build(model: keras.Model, batch_spec) -> None:
    """Creates the compiled metrics' and losses' variables before a step.

    Variables cannot be made inside `strategy.run`; fit makes them from its
    first batch (the step keras-team/keras#20585 breaks), here from the
    `tf.TensorSpec`s of one replica's batch. Keras offers no public call
    for this: `_symbolic_build` is what fit itself calls.
    """
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=batch_spec)
