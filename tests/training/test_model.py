"""The ensemble: each member is trained on its own loss, and the answer is their mean."""

import keras
import numpy as np

from training.model import MEMBERS, build_members, ensemble
from training.train import EachMember


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
    members = build_members()
    images = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    each = np.asarray(members(images, training=False))
    assert each.shape == (3, MEMBERS, 4)
    assert not np.allclose(each[:, 0], each[:, 1])  # two networks, not one
    mean = np.asarray(ensemble(members)(images, training=False))
    np.testing.assert_allclose(mean, each.mean(axis=1), rtol=1e-5, atol=1e-6)
