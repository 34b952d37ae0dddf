"""Boxes drawn on images, for PNGs and TensorBoard."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from overfeat_tf.errors import InvalidValueError

PREDICTED = (255, 64, 64)
TRUTH = (64, 220, 64)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    captions: Sequence[str] = (),
    *,
    truth: np.ndarray | None = None,
    truth_captions: Sequence[str] = (),
) -> np.ndarray:
    """uint8 [H, W, 3]: `image` with predicted boxes (red, captioned above
    their top edge) and ground truth (green, captioned below its bottom).

    Args:
        image: [H, W, 3] (or [H, W, 1]) pixels in [0, 255].
        boxes: [N, 4] xyxy pixels of the predictions.
        captions: a text per predicted box (e.g. "circle 0.93"), or none.
        truth: [K, 4] ground-truth boxes, or None.
        truth_captions: a text per ground-truth box, or none.
    """
    pixels = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3):
        raise InvalidValueError(
            f"Expected an image [H, W, 3] or [H, W, 1]. Received: shape={pixels.shape}"
        )
    canvas = Image.fromarray(np.repeat(pixels, 3 // pixels.shape[-1], -1))
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(min(canvas.size) / 150))
    layers = [(truth, truth_captions, TRUTH, False), (boxes, captions, PREDICTED, True)]
    for layer_boxes, texts, colour, above in layers:
        if layer_boxes is None:
            continue
        layer_boxes = np.asarray(layer_boxes, np.float32).reshape(-1, 4)
        for i, (x1, y1, x2, y2) in enumerate(layer_boxes):
            draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
            if i < len(texts):
                _, top, right, bottom = draw.textbbox((0, 0), texts[i])
                y = y1 - (bottom - top) - 3 if above else y2 + 1
                draw.rectangle([x1, y, x1 + right + 2, y + bottom + 2], fill=colour)
                draw.text((x1 + 1, y), texts[i], fill=(0, 0, 0))
    return np.asarray(canvas)


def save_png(image: np.ndarray, path: str) -> None:
    """Writes uint8 [H, W, 3] pixels to `path` as PNG."""
    Image.fromarray(np.asarray(image, np.uint8)).save(path, format="PNG")
