"""The blur augmentation: a Gaussian of the drawn sigma with reflected borders, brightness
kept, applied to its share of the images and to no other. The table recolouring: the table
changes, the mug does not. The framing: zoom about the centre, shifts, tilts and mirrors in
their ranges. Hue and saturation: colours change, greys do not. The grey contrast: Pillow's,
on its share of the images."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from training.augment import (
    RandomBlur,
    RandomFraming,
    RandomGreyContrast,
    RandomHueSaturation,
    RandomTableColour,
    blur_matrix,
)


def test_the_blur_matrix_is_a_normalised_gaussian_with_reflected_borders() -> None:
    matrix = np.asarray(blur_matrix(64, 1.5, radius=5))
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-6)  # brightness kept
    taps = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    np.testing.assert_allclose(matrix[32, 27:38], taps / taps.sum(), rtol=1e-5)
    # Pixel 0 reads 5..1 (reflected) and 0..5: pixels 1..5 count twice.
    np.testing.assert_allclose(matrix[0, 1:6], 2 * taps[6:] / taps.sum(), rtol=1e-5)
    np.testing.assert_allclose(matrix[63, 58:63], 2 * taps[:5] / taps.sum(), rtol=1e-5)
    assert matrix[0, 6:].sum() == 0 and matrix[63, :58].sum() == 0


def test_the_blur_is_close_to_pillows_gaussian_blur_and_keeps_other_images() -> None:
    rng = np.random.default_rng(0)
    scene = np.zeros((64, 64, 3), dtype=np.uint8)
    scene[20:44, 24:40] = rng.integers(100, 255, size=3)  # a mug-sized block on a table
    images = np.stack([scene, scene]).astype(np.float32)
    blurred = np.asarray(RandomBlur(rate=1.0, sigmas=(2.0, 2.0), seed=1)(images))
    pillow = np.asarray(Image.fromarray(scene).filter(ImageFilter.GaussianBlur(2.0)), np.float32)
    inner = (slice(8, 56), slice(8, 56))  # away from the borders, which each treats its way
    assert np.abs(blurred[0][inner] - pillow[inner]).mean() < 1.5
    assert np.abs(blurred[0] - scene).mean() > 5  # it did blur
    untouched = np.asarray(RandomBlur(rate=0.0, sigmas=(2.0, 2.0), seed=1)(images))
    np.testing.assert_array_equal(untouched, images)


def test_the_table_is_recoloured_and_the_mug_is_not() -> None:
    scene = np.full((64, 64, 3), (170.0, 165.0, 160.0), dtype=np.float32)  # a grey table
    scene[20:44, 24:40] = (30.0, 30.0, 120.0)  # a blue mug
    images = np.stack([scene, scene])
    darker_green = RandomTableColour(1.0, brightness=(0.5, 0.5), tint=(1.0, 1.0), seed=1)
    out = np.asarray(darker_green(images))
    np.testing.assert_allclose(out[:, 0, 0], [[85.0, 82.5, 80.0]] * 2, rtol=1e-5)  # table x0.5
    np.testing.assert_allclose(out[:, 32, 32], [[30.0, 30.0, 120.0]] * 2, atol=0.5)  # mug kept
    tinted = np.asarray(RandomTableColour(1.0, (1.0, 1.0), (0.7, 1.4), seed=1)(images))
    ratios = tinted[:, 0, 0] / scene[0, 0]
    assert np.ptp(ratios, axis=1).min() > 0.01  # each table got its own tint per channel
    assert not np.allclose(ratios[0], ratios[1])
    untouched = np.asarray(RandomTableColour(0.0, (0.5, 0.5), (1.0, 1.0), seed=1)(images))
    np.testing.assert_array_equal(untouched, images)


def _scene() -> np.ndarray:
    scene = np.full((64, 64, 3), 150.0, dtype=np.float32)  # a grey table
    scene[16:48, 16:32] = (30.0, 30.0, 120.0)  # a blue mug, left of centre
    return scene


def _blue(images: np.ndarray) -> np.ndarray:
    """Where the blue mug is: blue well above red, which the grey table never is."""
    return (images[..., 2] - images[..., 0]) > 45


def test_framing_zooms_out_about_the_centre_and_mirrors_half_the_images() -> None:
    images = np.stack([_scene()] * 16)
    twice_as_far = RandomFraming(shift=0.0, zoom=(2.0, 2.0), degrees=0.0, seed=1)
    out = np.asarray(twice_as_far(images))
    mug = _blue(out)
    # The mug, 32x16 pixels, is 16x8 at twice the distance: a quarter of the area.
    np.testing.assert_allclose(mug.sum(axis=(1, 2)), 32 * 16 / 4, rtol=0.15)
    rows = np.nonzero(mug[0].any(axis=1))[0]
    assert rows.min() >= 23 and rows.max() <= 40  # centred on the frame's middle row
    left = mug[:, :, :32].sum(axis=(1, 2)) > mug[:, :, 32:].sum(axis=(1, 2))
    assert 0 < left.sum() < 16  # some mirrored to the right, some not
    np.testing.assert_allclose(out[:, 0, 0], 150.0)  # the table filled from the edges
    np.testing.assert_array_equal(twice_as_far(images, training=False), images)


def test_framing_shifts_and_tilts_within_its_ranges() -> None:
    images = np.stack([_scene()] * 32)
    shifted = np.asarray(RandomFraming(shift=0.12, zoom=(1.0, 1.0), degrees=0.0, seed=2)(images))
    mug = _blue(shifted)
    top_rows = np.array([np.nonzero(m.any(axis=1))[0].min() for m in mug])
    assert np.all(np.abs(top_rows - 16) <= 0.12 * 64 + 1) and np.ptp(top_rows) > 4
    tilted = np.asarray(RandomFraming(shift=0.0, zoom=(1.0, 1.0), degrees=25.0, seed=3)(images))
    area = _blue(tilted).sum(axis=(1, 2))
    np.testing.assert_allclose(area, 32 * 16, rtol=0.1)  # turned, not scaled
    assert not np.allclose(tilted[0], tilted[1])


def test_hue_and_saturation_change_the_colour_and_keep_greys() -> None:
    images = np.stack([_scene()] * 8)
    unchanged = RandomHueSaturation((1.0, 1.0), hue=0.0, seed=1)(images)
    np.testing.assert_allclose(unchanged, images, atol=0.01)
    out = np.asarray(RandomHueSaturation((0.25, 4.0), hue=0.05, seed=1)(images))
    np.testing.assert_allclose(out[:, 0, 0], 150.0, atol=0.01)  # grey has no hue to turn
    mugs = out[:, 32, 20]
    assert np.ptp(mugs[:, 2] - mugs[:, 0]) > 20  # more and less saturated blues
    assert not np.allclose(mugs[:, 1], mugs[:, 1].mean(), atol=1.0)  # and turned hues
    np.testing.assert_array_equal(
        RandomHueSaturation((0.25, 4.0), hue=0.05, seed=1)(images, training=False), images
    )


def test_grey_contrast_is_pillows_on_its_share_of_the_images_and_repeats_with_its_seed() -> None:
    scene = _scene()
    scene[scene[..., 0] == 150.0] = (120.0, 170.0, 110.0)  # a greenish table
    scene[40:56, 40:60] = (250.0, 200.0, 20.0)  # something yellow beside the mug
    images = np.stack([scene] * 32)
    out = np.asarray(RandomGreyContrast(0.5, (0.4, 1.0), seed=1)(images))
    again = np.asarray(RandomGreyContrast(0.5, (0.4, 1.0), seed=1)(images))
    np.testing.assert_array_equal(out, again)
    changed = np.abs(out - images).max(axis=(1, 2, 3)) > 1.0
    assert 6 <= changed.sum() <= 26  # about half, each image drawn on its own
    photo = Image.fromarray(scene.astype(np.uint8))
    for image in out[changed]:
        # The factor each image got: the mug against the table in green, scaled by it.
        factor = (image[32, 20, 1] - image[0, 0, 1]) / (scene[32, 20, 1] - scene[0, 0, 1])
        assert 0.4 - 1e-3 <= factor <= 1.0 + 1e-3
        pillow = np.asarray(ImageEnhance.Contrast(photo).enhance(float(factor)), np.float32)
        # Pillow rounds its grey (0.5) and truncates its pixels (under 1).
        assert np.abs(image - pillow).max() < 1.5
    np.testing.assert_array_equal(
        RandomGreyContrast(1.0, (0.4, 1.0), seed=1)(images, training=False), images
    )
