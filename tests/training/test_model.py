"""The ensemble: each member is trained on its own loss, and the answer is their mean; the
augmentation runs in the training step only, in front of the members that are exported; the
feature-statistics jitter inside them moves each channel's statistics in training only."""

import keras
import numpy as np
import pytest

from training.model import MEMBERS, RandomFeatureStatistics, build_members, ensemble
from training.non_mugs import corners_are_background
from training.pipeline import recipe_for
from training.train import EachMember, TrainConfig, with_augmentation


def test_each_member_is_scored_on_its_own() -> None:
    """One member sure and right, the other sure and wrong: the loss is the mean of the two
    members' losses, far above the loss of their mean logits (which cancel out)."""
    target = np.array([[1.0, 0.0, 0.0, 0.0]], "float32")
    right, wrong = [8.0, 0.0, 0.0, 0.0], [0.0, 8.0, 0.0, 0.0]
    members = np.array([[right, wrong]], "float32")
    cross_entropy = keras.losses.categorical_crossentropy
    each = [
        float(cross_entropy(target, np.array([m], "float32"), from_logits=True)[0])
        for m in (right, wrong)
    ]
    loss = float(EachMember(label_smoothing=0.0)(target, members))
    assert np.isclose(loss, np.mean(each), rtol=1e-5)
    of_the_mean = float(cross_entropy(target, members.mean(axis=1), from_logits=True)[0])
    assert loss > of_the_mean + 3.0


def test_the_answer_is_the_members_mean() -> None:
    members = build_members(4, 64)
    images = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    each = np.asarray(members(images, training=False))
    assert each.shape == (3, MEMBERS, 4)
    assert not np.allclose(each[:, 0], each[:, 1])  # two networks, not one
    mean = np.asarray(ensemble(members)(images, training=False))
    np.testing.assert_allclose(mean, each.mean(axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # a training step / a training process
def test_the_augmentation_runs_in_training_only_and_trains_the_members() -> None:
    members = build_members(4, 64)
    fitted = with_augmentation(members, seed=1)
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(fitted(images, training=False), members(images, training=False))
    augmenter = fitted.get_layer("augment")
    assert not np.allclose(augmenter(images, training=True), images)
    before = [w.numpy() for w in members.weights]
    fitted.compile(optimizer="adam", loss=EachMember(label_smoothing=0.1))
    fitted.train_on_batch(images, np.eye(4, dtype="float32"))
    after = [w.numpy() for w in members.weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_feature_statistics_move_per_channel_and_keep_the_pattern() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(2.0, 3.0, (16, 8, 8, 4)).astype(np.float32)
    features += rng.normal(0.0, 2.0, (16, 1, 1, 4)).astype(np.float32)  # each image its own
    jitter = RandomFeatureStatistics(seed=1, rate=1.0)
    np.testing.assert_array_equal(jitter(features, training=False), features)
    out = np.asarray(jitter(features, training=True))
    assert not np.allclose(out.mean(axis=(1, 2)), features.mean(axis=(1, 2)), atol=0.05)
    for image in range(4):  # each channel of each image: an affine map of what it was
        for channel in range(4):
            a, b = features[image, ..., channel].ravel(), out[image, ..., channel].ravel()
            assert abs(np.corrcoef(a, b)[0, 1]) > 0.999
    none = RandomFeatureStatistics(seed=1, rate=0.0)(features, training=True)
    np.testing.assert_array_equal(none, features)


def layer_types(model: keras.Model) -> set[str]:
    found = set()
    for layer in model.layers:
        found.add(type(layer).__name__)
        if isinstance(layer, keras.Model):
            found |= layer_types(layer)
    return found


def test_the_photos_choose_the_recipe() -> None:
    """The corner rule: a dark subject on a plain ground is "plain-ground" (white balance,
    feature jitter, the table-and-light augmentation); texture to the edges is "full-frame"
    (none of them), with one wider network trained longer. A recipe, epochs or members given
    in the config are kept."""
    rng = np.random.default_rng(0)
    plain = np.full((8, 48, 48, 3), 150, np.uint8)
    plain[:, 16:32, 16:32] = rng.integers(0, 255, (8, 16, 16, 3))
    filled = rng.integers(0, 255, (8, 48, 48, 3)).astype(np.uint8)

    def chosen(config: TrainConfig, photos: np.ndarray) -> tuple:
        picked = recipe_for(config, corners_are_background(photos))
        return picked.recipe, picked.members, picked.width, picked.epochs

    assert chosen(TrainConfig(), plain) == ("plain-ground", 3, 16, 40)
    assert chosen(TrainConfig(), filled) == ("full-frame", 1, 24, 60)
    given = TrainConfig(recipe="plain-ground", epochs=5, members=2)
    assert chosen(given, filled) == ("plain-ground", 2, 16, 5)
    wide = build_members(3, 48, members=1, plain_ground=False, width=24)
    convolutions = [layer for layer in wide.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].filters == 24 and convolutions[-1].filters == 24 * 8

    plain_ground = layer_types(with_augmentation(build_members(3, 48), 1, plain_ground=True))
    full_frame = layer_types(
        with_augmentation(build_members(3, 48, plain_ground=False), 1, plain_ground=False)
    )
    assert {"GreyWorldBalance", "RandomFeatureStatistics", "RandomGreyContrast"} <= plain_ground
    assert not {"GreyWorldBalance", "RandomFeatureStatistics", "RandomGreyContrast"} & full_frame
    assert {"RandomFraming", "RandomHueSaturation"} <= full_frame
