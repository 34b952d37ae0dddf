"""tf.distribute strategies by name, and the global batch they split."""

from __future__ import annotations

import tensorflow as tf

from overfeat_tf.errors import InvalidValueError, UnsupportedError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for a `TrainConfig.strategy` name.

    - "default": TensorFlow's default strategy (one device, no wrapping);
    - "one_device": the first GPU if there is one, else the CPU;
    - "mirrored": synchronous data parallelism over the local GPUs (or the
      logical CPU devices, as in the tests);
    - "multi_worker": synchronous over machines (`TF_CONFIG`); blocked by
      keras-team/keras#20585 (Keras 3's fit cannot run under
      MultiWorkerMirroredStrategy), so it raises NotImplementedError;
    - "tpu": the TPU found by `TPUClusterResolver` (a Cloud TPU VM or the
      `TPU_NAME` environment variable).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        raise UnsupportedError(
            'strategy="multi_worker" is blocked upstream: Keras 3 model.fit and '
            "evaluate cannot run under tf.distribute.MultiWorkerMirroredStrategy "
            "(keras-team/keras#20585: the first batch is averaged with "
            "strategy.reduce, then metrics are reduced over a scalar axis). Use "
            '"mirrored" for the GPUs of one machine.'
        )
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise InvalidValueError(
        f"strategy must be one of {STRATEGIES}. Received: strategy={name!r}"
    )


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """The per-replica batch; the global batch must split evenly."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise InvalidValueError(
            f"train.batch_size is the global batch and must be divisible by the "
            f"{replicas} replicas of the strategy. Received: batch_size={batch_size}"
        )
    return batch_size // replicas
