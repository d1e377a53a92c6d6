"""Augmentation aimed at what separates the train photos from real uploads: the table and
light shift to the test photos (framing, colour cast, brightness), and the conditions of
`training.corruptions` (exposure, low contrast, blur, noise, a tilted camera).

The network's first layer removes a colour cast (`training.model.GreyWorldBalance`); the
rest, exposure, flat light, blur, noise and a tilted camera, is taught here.
`RandomTableColour` (a table of another colour) is not among them: trained with, the network
did worse on test/; the unknown answer's threshold uses it (`training.novelty`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


class RandomExposure(layers.Layer):
    """Multiply the pixel values by a gain drawn log-uniformly from `gains` and clip: an
    under- or over-exposed photo, with its highlights burnt out."""

    def __init__(self, gains: tuple[float, float], seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gains = gains
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        low, high = ops.log(self.gains[0]), ops.log(self.gains[1])
        shape = (ops.shape(images)[0], 1, 1, 1)
        gain = ops.exp(keras.random.uniform(shape, low, high, seed=self.seed_generator))
        return ops.clip(images * gain, 0.0, 255.0)


class RandomFraming(layers.Layer):
    """Where the camera stood, in one resampling: mirrored left-right (half the images),
    shifted up to `shift` of the frame each way, `zoom` times the field of view (drawn
    uniformly; above 1, farther away) and tilted up to `degrees` either way. The frame around
    is filled from its edges ("nearest"): one mug on a wider table.

    One affine transform per image instead of Keras' four layers (flip, translation, zoom,
    rotation): they resampled the image four times, blurring it a little each time, and took
    longer (training/EXPERIMENTS.md)."""

    def __init__(
        self, shift: float, zoom: tuple[float, float], degrees: float, seed: int, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.shift, self.zoom, self.degrees = shift, zoom, degrees
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        count = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]

        def draw(low, high):
            return keras.random.uniform((count,), low, high, seed=self.seed_generator)

        mirror = ops.where(draw(0.0, 1.0) < 0.5, -1.0, 1.0)
        scale = draw(*self.zoom)
        angle = draw(-self.degrees, self.degrees) * (np.pi / 180.0)
        shift_x = draw(-self.shift, self.shift) * width
        shift_y = draw(-self.shift, self.shift) * height
        # Output pixel p reads input pixel centre + M (p - centre) + shift, with M = mirror x
        # scale x rotation.
        a0, a1 = mirror * scale * ops.cos(angle), -mirror * scale * ops.sin(angle)
        b0, b1 = scale * ops.sin(angle), scale * ops.cos(angle)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        a2 = cx - a0 * cx - a1 * cy + shift_x
        b2 = cy - b0 * cx - b1 * cy + shift_y
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=-1)
        return ops.image.affine_transform(
            images, transform, interpolation="bilinear", fill_mode="nearest"
        )


class RandomGreyContrast(layers.Layer):
    """Pull a share `rate` of the images towards their mean grey by a factor drawn uniformly
    from `factors`, clipped: Pillow's contrast (`ImageEnhance.Contrast`), which the suite's
    low contrast and flat light in uploads do, taking colour out as it goes. Keras'
    `RandomContrast` scales about each channel's own mean and keeps the colours; this comes
    beside it, not in its place (in its place, clean accuracy and the unknown answer fell).
    The grey is the mean luma, 0.299 R + 0.587 G + 0.114 B (Pillow's "L")."""

    LUMA = (0.299, 0.587, 0.114)

    def __init__(self, rate: float, factors: tuple[float, float], seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate, self.factors = rate, factors
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        shape = (ops.shape(images)[0], 1, 1, 1)
        factor = keras.random.uniform(shape, *self.factors, seed=self.seed_generator)
        applies = keras.random.uniform(shape, seed=self.seed_generator) < self.rate
        luma = ops.sum(images * np.asarray(self.LUMA, "float32"), axis=-1, keepdims=True)
        grey = ops.mean(luma, axis=(1, 2, 3), keepdims=True)
        flatter = ops.clip(grey + factor * (images - grey), 0.0, 255.0)
        return ops.where(applies, flatter, images)


class RandomHueSaturation(layers.Layer):
    """Colour shifts in one trip through HSV: saturation times a factor drawn log-uniformly
    from `saturation` (clipped to 1), hue turned by up to `hue` of the colour wheel either
    way. Keras' RandomSaturation and RandomHue would each convert to HSV and back."""

    def __init__(self, saturation: tuple[float, float], hue: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.saturation, self.hue = saturation, hue
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        shape = (ops.shape(images)[0], 1, 1)
        low, high = np.log(self.saturation[0]), np.log(self.saturation[1])
        factor = ops.exp(keras.random.uniform(shape, low, high, seed=self.seed_generator))
        turn = keras.random.uniform(shape, -self.hue, self.hue, seed=self.seed_generator)
        hsv = ops.image.rgb_to_hsv(images / 255.0)
        hue = ops.mod(hsv[..., 0] + turn, 1.0)
        saturation = ops.clip(hsv[..., 1] * factor, 0.0, 1.0)
        hsv = ops.stack([hue, saturation, hsv[..., 2]], axis=-1)
        return ops.image.hsv_to_rgb(hsv) * 255.0


class RandomTableColour(layers.Layer):
    """Recolour the table under a share `rate` of the photos: scale the pixels that look like
    the frame's border (the table, seen through a glass too) by a brightness drawn
    log-uniformly from `brightness` times a per-channel tint from `tint`, and leave the mug.

    Why: the training photos sit on a grey table, uploads (and test/) on others, and the grey
    world white balance divides by the frame's mean colour, which the table dominates, so a
    green table tints the mug after it; a global gain it would cancel. The table's colour is
    the mean of a `BORDER`-pixel frame; a pixel's weight falls off as a Gaussian of its
    distance from that colour, with a width of a quarter of the table's level plus 12.

    Used for the unknown answer's threshold (`training.novelty`), not in training: as half
    the training batches' augmentation, it cost accuracy on test/ and under the photo suite
    (training/EXPERIMENTS.md)."""

    BORDER = 4

    def __init__(
        self,
        rate: float,
        brightness: tuple[float, float],
        tint: tuple[float, float],
        seed: int,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.rate, self.brightness, self.tint = rate, brightness, tint
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        border = np.ones((*images.shape[1:3], 1), "float32")
        border[self.BORDER : -self.BORDER, self.BORDER : -self.BORDER] = 0.0
        table = ops.sum(images * border, axis=(1, 2), keepdims=True) / border.sum()  # [N,1,1,3]
        width = 0.25 * ops.mean(table, axis=-1, keepdims=True) + 12.0
        distance = ops.sum(ops.square(images - table), axis=-1, keepdims=True)
        weight = ops.exp(-distance / (2.0 * ops.square(width)))  # 1 on the table, 0 on the mug
        count = ops.shape(images)[0]
        level = keras.random.uniform(
            (count, 1, 1, 1), *map(np.log, self.brightness), seed=self.seed_generator
        )
        tint = keras.random.uniform(
            (count, 1, 1, 3), *map(np.log, self.tint), seed=self.seed_generator
        )
        applies = keras.random.uniform((count, 1, 1, 1), seed=self.seed_generator) < self.rate
        gain = ops.where(applies, ops.exp(level + tint), 1.0)
        return ops.clip(images * (1.0 + weight * (gain - 1.0)), 0.0, 255.0)


class RandomSensorNoise(layers.Layer):
    """Gaussian noise on a share `rate` of the images, each with its own sigma drawn from
    0..`max_sigma` (0..255 units), clipped to the pixel range."""

    def __init__(self, rate: float, max_sigma: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate, self.max_sigma = rate, max_sigma
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        shape = (ops.shape(images)[0], 1, 1, 1)
        sigma = keras.random.uniform(shape, 0.0, self.max_sigma, seed=self.seed_generator)
        applies = keras.random.uniform(shape, seed=self.seed_generator) < self.rate
        noise = keras.random.normal(ops.shape(images), seed=self.seed_generator) * sigma
        return ops.clip(images + ops.where(applies, noise, 0.0), 0.0, 255.0)


class RandomBlur(layers.Layer):
    """Gaussian blur on a share `rate` of the images, with one sigma per batch drawn from
    `sigmas` (pixels), with reflected borders. Separable, and each pass is one matrix product
    (`blur_matrix`): a 2-D kernel (Keras' RandomGaussianBlur) cost more than every other
    augmentation together, and a separable depthwise convolution several times the products
    (training/EXPERIMENTS.md)."""

    RADIUS = 5  # taps either side: covers 2.5 sigma of the largest blur

    def __init__(self, rate: float, sigmas: tuple[float, float], seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate, self.sigmas = rate, sigmas
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        sigma = keras.random.uniform((), *self.sigmas, seed=self.seed_generator)
        down = blur_matrix(images.shape[1], sigma, self.RADIUS)
        across = ops.transpose(blur_matrix(images.shape[2], sigma, self.RADIUS))
        planes = ops.transpose(images, (0, 3, 1, 2))  # [N, C, H, W]: a matrix per channel
        blurred = ops.transpose(ops.matmul(ops.matmul(down, planes), across), (0, 2, 3, 1))
        shape = (ops.shape(images)[0], 1, 1, 1)
        applies = keras.random.uniform(shape, seed=self.seed_generator) < self.rate
        return ops.where(applies, blurred, images)


def blur_matrix(size: int, sigma, radius: int):
    """[size, size] matrix that blurs a row of `size` pixels with a Gaussian of `sigma`
    (`radius` taps either side, weights summing to 1), borders reflected (..., 2, 1, | 0, 1,
    2, ...): row i of the result is the blurred pixel i."""
    taps = np.arange(-radius, radius + 1)
    sources = np.arange(size)[:, None] + taps[None, :]  # [size, taps]: pixels each one reads
    sources = np.abs(sources)  # reflected at the start
    sources = np.where(sources > size - 1, 2 * (size - 1) - sources, sources)  # and the end
    reads = np.eye(size, dtype="float32")[sources]  # [size, taps, size]: one-hot
    weights = ops.exp(-0.5 * ops.square(ops.convert_to_tensor(taps, "float32") / sigma))
    weights = weights / ops.sum(weights)
    return ops.einsum("t,ite->ie", weights, reads)


def build_augmenter(seed: int) -> keras.Sequential:
    """Random, per-image transforms of float [N, size, size, 3] batches in 0..255."""
    return keras.Sequential(
        [
            # Mostly zoom out, up to 1.8x the field of view: the mugs in the test photos span
            # about a third of the frame, in the train photos about half. Filled from the
            # edges, not by reflection: a reflected frame shows mirrored copies of the mug,
            # and the model learned that one small dark mug is the blue one
            # (training/EXPERIMENTS.md).
            RandomFraming(shift=0.12, zoom=(0.85, 1.8), degrees=25.0, seed=seed),
            RandomExposure((0.4, 1.7), seed=seed + 9),
            keras.layers.RandomBrightness(0.35, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(0.6, value_range=(0, 255), seed=seed + 4),
            # A quarter of the images flatter still, towards the mean grey as Pillow does: the
            # suite's low contrast and flat light (training/EXPERIMENTS.md).
            RandomGreyContrast(0.25, (0.4, 1.0), seed=seed + 12),
            # Saturation x0.25..x1.5 and hue +-0.05 of the wheel, and 5% greyscale copies. A
            # black mug is barely less colourful than the blue one in train/ (the saturation
            # of its darkest pixels: median 0.09 against 0.15), so stronger saturation changes
            # or more greyscale hide what tells them apart; without greyscale at all,
            # over-exposed white mugs read as the glass (training/EXPERIMENTS.md).
            RandomHueSaturation((0.25, 1.5), hue=0.05, seed=seed + 5),
            keras.layers.RandomGrayscale(0.05, seed=seed + 7),
            RandomBlur(0.35, (0.3, 2.5), seed=seed + 10),
            RandomSensorNoise(0.35, 30.0, seed=seed + 11),
        ],
        name="augment",
    )


def build_photo_augmenter(seed: int) -> keras.Sequential:
    """Milder transforms for photos the subject fills (the "full-frame" recipe): framing
    mostly closer in, a little light and colour, now and then a soft focus or noise. Hue
    barely moves: in such photos it is often what tells the classes apart."""
    return keras.Sequential(
        [
            RandomFraming(shift=0.08, zoom=(0.7, 1.1), degrees=15.0, seed=seed),
            keras.layers.RandomBrightness(0.2, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(0.3, value_range=(0, 255), seed=seed + 4),
            RandomHueSaturation((0.7, 1.3), hue=0.02, seed=seed + 5),
            RandomBlur(0.15, (0.3, 1.5), seed=seed + 10),
            RandomSensorNoise(0.15, 12.0, seed=seed + 11),
        ],
        name="augment",
    )
