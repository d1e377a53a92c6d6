"""The network: grey-world white balance, then a small residual CNN with batch norm and a
global-average-pooling head.

Global pooling (instead of flattening) keeps the head from memorising where the table
shows through, which is what lets the model carry over from the grey to the green table.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from service.imaging import CLASS_NAMES, IMAGE_SIZE

STAGE_CHANNELS = (32, 64, 128, 256)


def build_model() -> keras.Model:
    """Inputs: float [N, 64, 64, 3] in 0..255. Outputs: softmax probabilities [N, 4]."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = GreyWorldBalance()(x)
    x = _conv_bn_relu(x, STAGE_CHANNELS[0], stride=2)  # 32x32
    for stage, channels in enumerate(STAGE_CHANNELS):
        x = _residual_block(x, channels, stride=1 if stage == 0 else 2)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(len(CLASS_NAMES), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mug_resnet")


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
    it is part of the exported graph, so serving does exactly the same."""

    def call(self, images):
        channel_means = ops.mean(images, axis=(1, 2), keepdims=True)
        grey = ops.mean(channel_means, axis=-1, keepdims=True)
        return images * (grey / (channel_means + 1e-3))
