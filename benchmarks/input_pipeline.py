"""Input pipeline throughput against the training step rate it must feed.

On the built-in data set (`overfeat_shapes`, generated on first use into
--data-dir), prints images/s delivered by the classification and detection
training pipelines, beside images/s consumed by a training step of the small
width-scaled model on the same machine, and their ratio (target >= 2x: the
input is never the bottleneck). Each is measured alone, one after the other.

    python benchmarks/input_pipeline.py            # ~3 minutes on 2 cores
    python benchmarks/input_pipeline.py --width 0.25 --batch-size 32
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import overfeat_tf as of  # noqa: E402
from overfeat_tf.data import pipelines, readers  # noqa: E402


def pipeline_rate(batches, batch_size, steps):
    """Images/s that the pipeline delivers, alone."""
    iterator = iter(batches)
    for _ in range(3):  # fill the buffers
        next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - start)


def training_rate(step, batch, batch_size, steps):
    """Images/s that training steps consume, fed one fixed batch."""
    for _ in range(2):  # compile
        step(*batch)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(*batch)
    float(loss)
    return steps * batch_size / (time.perf_counter() - start)


def train_step_fn(model, loss_fn):
    optimizer = keras.optimizers.SGD(0.01, momentum=0.6)

    @tf.function(jit_compile=True)
    def step(images, targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(images, training=True)["class_logits"], targets)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir", default=os.path.expanduser("~/tensorflow_datasets")
    )
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    n = args.batch_size

    model = of.overfeat_accurate(10, width=args.width)
    window = model.geometry.window
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def classify_loss(logits, labels):
        return sparse(labels, logits[:, 0, 0])

    def spatial_loss(logits, targets):  # stands in for detection targets
        return tf.reduce_mean(tf.nn.softmax(logits)[..., 0])

    cases = []
    data = readers.load_classification(
        "overfeat_shapes/classification", "train", data_dir=args.data_dir
    )
    batches = pipelines.classification_train(data.dataset, window, batch_size=n)
    cases.append(("classification", batches, classify_loss))
    data = readers.load_detection(
        "overfeat_shapes/detection", "train", data_dir=args.data_dir
    )
    batches = pipelines.detection_train(data.dataset, 256, batch_size=n, max_boxes=8)
    cases.append(("detection", batches, spatial_loss))

    print(f"accurate model, width {args.width}, batch {n}, {os.cpu_count()} cores\n")
    print("| pipeline | input | pipeline images/s | training images/s | ratio |")
    print("|---|---|---|---|---|")
    for name, batches, loss_fn in cases:
        fed = pipeline_rate(batches, n, args.steps)
        batch = next(iter(batches))
        step = train_step_fn(model, loss_fn)
        consumed = training_rate(step, batch, n, args.steps)
        shape = "x".join(str(d) for d in batch[0].shape[1:3])
        print(
            f"| {name} | {shape} | {fed:.0f} | {consumed:.0f} | {fed / consumed:.1f}x |"
        )


if __name__ == "__main__":
    main()
