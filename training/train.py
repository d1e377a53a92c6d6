"""The training recipe: a fixed schedule (warm-up, then cosine decay to near zero), AdamW,
label smoothing, augmentation in the input pipeline, seeded and deterministic.

No early stopping on the test split: its accuracy swings from epoch to epoch, so picking
the best epoch would only tune to those particular photos.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from service.imaging import CLASS_NAMES
from training.augment import build_augmenter
from training.dataset import LabelledImages
from training.model import build_model


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; recorded in metrics.json next to the model."""

    epochs: int = 40
    batch_size: int = 64
    seed: int = 1
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 3
    eval_every: int = 5
    holdout_fraction: float = 0.1  # of the training photos, for calibration

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def make_deterministic(seed: int) -> None:
    """Same seed, same data: same weights, same metrics."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train(
    config: TrainConfig, data: LabelledImages, eval_data: LabelledImages | None = None
) -> keras.Model:
    """Train a fresh model on `data`; report accuracy on `eval_data` every few epochs."""
    make_deterministic(config.seed)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=_schedule(config, steps_per_epoch),
            weight_decay=config.weight_decay,
        ),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        ),
        metrics=["accuracy"],
    )
    validation = {}
    if eval_data is not None:
        validation = {
            "validation_data": _batches(eval_data, config.batch_size),
            "validation_freq": config.eval_every,
        }
    model.fit(
        _training_batches(data, config),
        epochs=config.epochs,
        shuffle=False,  # the input pipeline shuffles, with the seed
        verbose=1 if sys.stdout.isatty() else 2,  # a line per epoch in a log
        **validation,
    )
    return model


def predict_outputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Model output (logits of the trained network; a dict for the serving model) for uint8
    images, in batches."""
    return model.predict(images.astype(np.float32), batch_size=256, verbose=0)


def augmented_copies(data: LabelledImages, copies: int, seed: int) -> LabelledImages:
    """`copies` randomly augmented versions of every photo, as training would see them."""
    augment = build_augmenter(seed)
    images = [
        augment(data.images.astype(np.float32), training=True).numpy().round().astype(np.uint8)
        for _ in range(copies)
    ]
    return LabelledImages(
        images=np.concatenate(images),
        labels=np.tile(data.labels, copies),
        paths=data.paths * copies,
    )


def _schedule(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.CosineDecay:
    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100,
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(1, config.epochs * steps_per_epoch - warmup_steps),
        alpha=0.01,
    )


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(len(CLASS_NAMES), dtype=np.float32)[labels]


def _batches(data: LabelledImages, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        (data.images.astype(np.float32), _one_hot(data.labels))
    ).batch(batch_size)


def _training_batches(data: LabelledImages, config: TrainConfig) -> tf.data.Dataset:
    augment = build_augmenter(config.seed)
    return (
        tf.data.Dataset.from_tensor_slices((data.images, _one_hot(data.labels)))
        .shuffle(len(data), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .map(
            lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
