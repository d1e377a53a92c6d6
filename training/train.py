"""The training recipe: a fixed schedule (warm-up, then cosine decay to near zero), AdamW,
label smoothing, augmentation in the training step, seeded and deterministic.

No early stopping on the test split: its accuracy swings from epoch to epoch, so picking
the best epoch would only tune to those particular photos.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from training.augment import build_augmenter, build_photo_augmenter
from training.dataset import LabelledImages
from training.model import MEMBERS, WIDTH, build_members, ensemble

DEFAULT_IMAGE_SIZE = 64  # the mug photos' size
PLAIN_GROUND, FULL_FRAME = "plain-ground", "full-frame"


@dataclass(frozen=True)
class Recipe:
    """What the photos choose (`training.pipeline.recipe_for`) beyond the augmentation: the
    networks and how long they train."""

    members: int  # networks in the ensemble
    width: int  # channels of each network's first stage, doubled at each of the four
    epochs: int


RECIPES = {
    PLAIN_GROUND: Recipe(members=MEMBERS, width=WIDTH, epochs=40),
    # One network half as wide again, trained 1.5x as long, for about 0.9x the three small
    # ones' time: on the flower photos it learnt more (held-out 77.6% against 74.7%, seed 1)
    # and answered more non-class images unknown (training/EXPERIMENTS.md).
    FULL_FRAME: Recipe(members=1, width=24, epochs=60),
}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of the recipe; recorded in metrics.json next to the model. `epochs`,
    `members` and `width` left open (None) are the recipe's (`with_recipe`)."""

    epochs: int | None = None
    batch_size: int = 64
    seed: int = 1
    image_size: int = DEFAULT_IMAGE_SIZE  # the network's input, square
    members: int | None = None  # networks in the ensemble
    width: int | None = None  # channels of each network's first stage
    learning_rate: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 3
    eval_every: int = 5
    holdout_fraction: float = 0.1  # of the training photos, for calibration
    # Non-mug images (`training.non_mugs`) beside each batch of mug photos, with the target
    # "no preference": outlier exposure, what the `unknown` answer rests on. 0: none.
    non_mugs_per_batch: int = 16
    # The unknown threshold is also fitted on the held-out photos put on another table
    # (`training.novelty`): they show only the training table. training.full, whose
    # held-out photos show both tables, leaves it out.
    threshold_on_another_table: bool = True
    # "plain-ground" (a small subject on a plain ground, as the mugs: grey-world white
    # balance, augmentation for another table and light, feature-statistics jitter) or
    # "full-frame" (the subject fills the photo: none of them, milder augmentation). None:
    # chosen from the data by the corner rule (`training.pipeline.recipe_for`).
    recipe: Literal["plain-ground", "full-frame"] | None = None

    def with_recipe(self, name: str) -> TrainConfig:
        """This config under recipe `name`, its networks and epochs where this leaves them
        open."""
        recipe = RECIPES[name]
        return replace(
            self,
            recipe=name,
            epochs=self.epochs or recipe.epochs,
            members=self.members or recipe.members,
            width=self.width or recipe.width,
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def make_deterministic(seed: int) -> None:
    """Same seed, same data: same weights, same metrics."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Trained(NamedTuple):
    """The members' ensemble, and per epoch the fit's loss and accuracy (`val_` ones every
    `val_every` epochs, on the evaluation photos when given)."""

    model: keras.Model
    history: dict[str, Any]


def train(
    config: TrainConfig,
    data: LabelledImages,
    eval_data: LabelledImages | None = None,
    non_mugs: np.ndarray | None = None,
) -> Trained:
    """Train a fresh model on `data` (and `non_mugs`, uint8 images, when the config asks for
    them); report accuracy on `eval_data` every few epochs. A config without a recipe trains
    the plain-ground one. Returns the ensemble and the curves."""
    config = config.with_recipe(config.recipe or PLAIN_GROUND)
    make_deterministic(config.seed)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    classes = len(data.class_names)
    plain_ground = config.recipe == PLAIN_GROUND
    members = build_members(
        classes, config.image_size, config.members, config.seed, plain_ground, config.width
    )
    model = with_augmentation(members, config.seed, plain_ground)
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=_schedule(config, steps_per_epoch),
            weight_decay=config.weight_decay,
        ),
        loss=EachMember(config.label_smoothing),
        metrics=[MugAccuracy()],
    )
    validation = {}
    if eval_data is not None:
        validation = {
            "validation_data": _batches(eval_data, config.batch_size),
            "validation_freq": config.eval_every,
        }
    fitted = model.fit(
        _training_batches(data, config, non_mugs if config.non_mugs_per_batch else None),
        epochs=config.epochs,
        shuffle=False,  # the input pipeline shuffles, with the seed
        verbose=1 if sys.stdout.isatty() else 2,  # a line per epoch in a log
        callbacks=[TimeEstimate(config.epochs)],
        **validation,
    )
    history = {key: [round(float(v), 4) for v in values] for key, values in fitted.history.items()}
    return Trained(ensemble(members), history | {"val_every": config.eval_every})


class TimeEstimate(keras.callbacks.Callback):
    """After the first epoch, and again after the second (the first also builds the graph),
    prints how long the whole fit should take, so a large folder surprises no one."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.started = 0.0
        self.ends: list[float] = []

    def on_train_begin(self, logs=None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.ends.append(time.monotonic())
        if epoch > 1 or epoch + 1 >= self.epochs:
            return
        # The second epoch alone has no graph building in it: the better estimate.
        per_epoch = self.ends[0] - self.started if epoch == 0 else self.ends[1] - self.ends[0]
        total = self.ends[0] - self.started + per_epoch * (self.epochs - 1)
        print(
            f"Estimated training time: {format_minutes(total)} for {self.epochs} epochs "
            f"({per_epoch:.0f}s an epoch); the evaluation and export follow.",
            flush=True,
        )


def format_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f}s"


def predict_outputs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Model output (logits of the trained network; a dict for the serving model) for uint8
    images, in batches."""
    return model.predict(images.astype(np.float32), batch_size=256, verbose=0)


def _schedule(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.CosineDecay:
    warmup_steps = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100,
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(1, config.epochs * steps_per_epoch - warmup_steps),
        alpha=0.01,
    )


def with_augmentation(members: keras.Model, seed: int, plain_ground: bool = True) -> keras.Model:
    """What is fitted: the augmenter, then the members. The random transforms run in the
    training step, on the thread pool the network's own ops use, and are inert outside
    training (validation, and `members` is what is exported). In a tf.data map instead, they
    ran on a thread of their own that took one of the two cores from the network's split
    kernels: a step took 1.2x as long, side by side in one process (training/EXPERIMENTS.md)."""
    images = keras.Input(members.input.shape[1:], name="images")
    augmenter = build_augmenter(seed) if plain_ground else build_photo_augmenter(seed)
    return keras.Model(images, members(augmenter(images)), name="training")


def _one_hot(data: LabelledImages) -> np.ndarray:
    return np.eye(len(data.class_names), dtype=np.float32)[data.labels]


def _batches(data: LabelledImages, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(
        (data.images.astype(np.float32), _one_hot(data))
    ).batch(batch_size)


def _training_batches(
    data: LabelledImages, config: TrainConfig, non_mugs: np.ndarray | None
) -> tf.data.Dataset:
    """Shuffled batches of the mug photos, as float; with `non_mugs`, each batch also holds
    `config.non_mugs_per_batch` of them, target 1/4 for every class (augmented alike in the
    training step, so that no augmentation, blur or noise say, can itself mean "a mug")."""
    batches = (
        tf.data.Dataset.from_tensor_slices((data.images, _one_hot(data)))
        .shuffle(len(data), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
    )
    if non_mugs is not None:
        count, classes = config.non_mugs_per_batch, len(data.class_names)
        no_preference = tf.fill([count, classes], 1.0 / classes)
        others = (
            tf.data.Dataset.from_tensor_slices(non_mugs)
            .shuffle(len(non_mugs), seed=config.seed + 1, reshuffle_each_iteration=True)
            .repeat()
            .batch(count)
        )
        batches = tf.data.Dataset.zip(batches, others).map(
            lambda mugs, images: (
                tf.concat([mugs[0], images], axis=0),
                tf.concat([mugs[1], no_preference], axis=0),
            )
        )
    return batches.map(lambda x, y: (tf.cast(x, tf.float32), y)).prefetch(tf.data.AUTOTUNE)


class EachMember(keras.losses.Loss):
    """Cross-entropy of every member's logits ([N, members, classes]) against the same targets,
    averaged: each member learns the whole task on its own, an ensemble. (Trained on their
    mean logits instead, they would be one wider network, leaning on each other.)"""

    def __init__(self, label_smoothing: float, name: str = "each_member", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        targets = keras.ops.broadcast_to(keras.ops.expand_dims(y_true, 1), keras.ops.shape(y_pred))
        losses = keras.losses.categorical_crossentropy(
            targets, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )
        return keras.ops.mean(losses, axis=-1)


class MugAccuracy(keras.metrics.Metric):
    """Accuracy of the members' mean logits over the mug photos of each batch only: the
    non-mug images have no right answer (their target is 1/4 for every class)."""

    def __init__(self, name: str = "accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.right = self.add_variable(shape=(), initializer="zeros", name="right")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        is_mug = keras.ops.cast(keras.ops.max(y_true, axis=-1) > 0.5, "float32")
        answers = keras.ops.argmax(keras.ops.mean(y_pred, axis=1), axis=-1)
        hits = keras.ops.argmax(y_true, axis=-1) == answers
        self.right.assign_add(keras.ops.sum(keras.ops.cast(hits, "float32") * is_mug))
        self.total.assign_add(keras.ops.sum(is_mug))

    def result(self):
        return self.right / keras.ops.maximum(self.total, 1.0)

    def reset_state(self) -> None:
        self.right.assign(0.0)
        self.total.assign(0.0)
