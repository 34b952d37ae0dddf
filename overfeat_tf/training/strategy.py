"""tf.distribute strategies by name, and the global batch they split."""

from __future__ import annotations

import tensorflow as tf

from overfeat_tf.errors import InvalidValueError
from overfeat_tf.training import cluster as cluster_lib

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def make_strategy(
    name: str, settings: dict | None = None, timeout: float = 300.0
) -> tf.distribute.Strategy:
    """The strategy for a `TrainConfig.strategy` name.

    - "default": TensorFlow's default strategy (one device, no wrapping);
    - "one_device": the first GPU if there is one, else the CPU;
    - "mirrored": synchronous data parallelism over the local GPUs (or the
      logical CPU devices, as in the tests);
    - "multi_worker": synchronous over the machines of `TF_CONFIG` and
      the GPUs of each (`MultiWorkerMirroredStrategy`), after every worker
      has answered within `timeout` seconds with the same `settings` (the
      resolved config; see `cluster.meet`). Keras 3's fit cannot run
      under it (keras-team/keras#20585): `training.loop.fit` does;
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
        cluster_lib.meet(cluster_lib.read_tf_config(), settings or {}, timeout)
        return tf.distribute.MultiWorkerMirroredStrategy()
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
