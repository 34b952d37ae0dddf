"""Why the default initializer is He-normal and not the paper's N(0, 0.01).

Prints, for both networks at width 1, the scale of the logits relative to
the input under each initializer, then trains a width-1/8 accurate model
for a few SGD steps on a learnable synthetic task (the class is the
quadrant holding a bright square) from each initializer, side by side.

    python benchmarks/initialization.py     # ~2 minutes on 2 cores
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import overfeat_tf as of  # noqa: E402

STEPS, BATCH, CLASSES = 60, 16, 4


def quadrant_batch(rng, size=221):
    """Noise images with a bright 40 px square; the label is its quadrant."""
    images = rng.normal(0, 1, (BATCH, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, CLASSES, BATCH)
    half = size // 2
    for image, label in zip(images, labels):
        y = rng.integers(0, half - 40) + half * (label // 2)
        x = rng.integers(0, half - 40) + half * (label % 2)
        image[y : y + 40, x : x + 40] += 3.0
    return images, labels.reshape(-1, 1, 1)


def logit_scale(builder, initializer, rng):
    model = builder(1000, initializer=initializer)
    images = rng.normal(size=(2, model.geometry.window, model.geometry.window, 3))
    logits = np.asarray(model(images.astype(np.float32))["class_logits"])
    return logits.std() / images.std()


def train(initializer, seed):
    keras.utils.set_random_seed(seed)
    model = of.overfeat_accurate(CLASSES, width=0.125, initializer=initializer)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.6),
        loss={
            "class_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        },
    )
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(STEPS):
        images, labels = quadrant_batch(rng)
        losses.append(model.train_on_batch(images, {"class_logits": labels}))
    return np.mean(losses[:10]), np.mean(losses[-10:])


def main():
    rng = np.random.default_rng(0)
    print("logit std / input std at width 1 (random input):")
    for builder in (of.overfeat_fast, of.overfeat_accurate):
        for initializer in ("paper", "he_normal"):
            scale = logit_scale(builder, initializer, rng)
            print(f"  {builder.__name__:<18} {initializer:<10} {scale:.2e}")
    print(
        f"\nwidth-1/8 accurate model, {STEPS} SGD steps (lr 0.01, momentum 0.6), "
        f"batch {BATCH}, {CLASSES} classes (chance loss {np.log(CLASSES):.3f}):"
    )
    for initializer in ("paper", "he_normal"):
        first, last = train(initializer, seed=0)
        print(
            f"  {initializer:<10} mean loss, steps 1-10: {first:.3f}; "
            f"last 10: {last:.3f}"
        )


if __name__ == "__main__":
    main()
