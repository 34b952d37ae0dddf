"""Runs one training from a recipe and saves the final weights and state.

Used by the training tests in subprocesses (logical CPU devices must be set
before TensorFlow starts; multi-worker runs need one process per worker).

    python tests/scripts/train_and_save.py OUT_DIR [--logical-cpus N] KEY=VALUE...
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )

    from overfeat_tf.config import load_config
    from overfeat_tf.training import prepare

    run = prepare(load_config(args.config, args.overrides))
    # Keras's evaluate cannot run under MultiWorkerMirroredStrategy either.
    fit_only = not run.config.train.custom_loop

    def loss():
        if fit_only:
            return run.model.evaluate(
                run.validation_dataset, verbose=0, return_dict=True
            )["loss"]
        return None

    before = loss()
    history = run.fit(verbose=2)
    after = loss()
    run.save()
    # What the trained network predicts, to compare with its saved file.
    probe = tf.reshape(tf.range(2 * 231 * 231 * 3, dtype=tf.float32), [2, 231, 231, 3])
    probe = tf.sin(probe / 997.0)
    logits = run.network(probe, training=False)["class_logits"]
    os.makedirs(args.out, exist_ok=True)
    run.model.save_weights(os.path.join(args.out, "final.weights.h5"))
    state = {
        "replicas": run.strategy.num_replicas_in_sync,
        "initial_epoch": run.initial_epoch,
        "epochs_run": len(history.history.get("loss", [])),
        "iterations": int(run.model.optimizer.iterations.numpy()),
        "loss_before": before,
        "loss_after": after,
        "history": history.history,
        "is_chief": run.is_chief,
        "probe_logits": tf.reshape(logits, [-1]).numpy().tolist(),
    }
    with open(os.path.join(args.out, "state.json"), "w") as f:
        json.dump(state, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
