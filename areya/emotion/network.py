"""The emotion network, in backend-agnostic Keras 3.

One backbone (convolutional stages trained from scratch, or a MobileNet pretrained on faces:
:mod:`areya.emotion.backbones`), two softmax heads: ``emotion7`` (FER order) and
``emotion4`` (Areya's scheme), so both schemes come from one forward pass.
Input: 48x48x1 grayscale in [0, 255] (float); the model scales it itself.
Augmentation happens outside the network (:mod:`areya.emotion.augment`), so the
served model holds no random layers.
"""

from __future__ import annotations

import keras
from keras import layers

from areya.emotion.backbones import IMAGENET_MEAN_RGB, faceres_layers
from areya.emotion.dataset import IMAGE_SIZE
from areya.emotion.schemes import SCHEME4, SCHEME7
from areya.emotion.train_config import TrainConfig

OUTPUT7 = "emotion7"
OUTPUT4 = "emotion4"


def standardize_faces(x):
    """Each face (N, H, W, C) to zero mean and about unit variance (the + 1 keeps flat faces finite)."""
    mean = keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)
    std = keras.ops.std(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) / (std + 1.0)


@keras.saving.register_keras_serializable(package="areya")
class PerImageStandardization(layers.Layer):
    """Each face to zero mean, unit variance: removes lighting and contrast differences between faces."""

    def call(self, x):
        return standardize_faces(x)


@keras.saving.register_keras_serializable(package="areya")
def masked_categorical_crossentropy(y_true, y_pred):
    """Cross-entropy per row from the softmax probabilities; an all-zero target row contributes no loss and no gradient.

    Keras's ``CategoricalCrossentropy`` on TensorFlow hands a softmax output's logits to the fused
    ``softmax_cross_entropy_with_logits``, whose gradient is ``softmax - target``: it assumes every target row sums
    to 1, so the zero rows of faces outside the 4-class scheme pushed every logit down, the weights grew without
    bound and training diverged (measured: the loss went from 3 to thousands within 100 SGD steps, while the same
    network with one head, or with those rows filled instead of zero, trained normally).
    """
    p = keras.ops.clip(keras.ops.cast(y_pred, "float32"), 1e-7, 1.0)
    return -keras.ops.sum(keras.ops.cast(y_true, "float32") * keras.ops.log(p), axis=-1)


@keras.saving.register_keras_serializable(package="areya")
class GreyToBackbone(layers.Layer):
    """A grey face (N, H, W, 1) in [0, 255] to what the face-pretrained backbone was trained on: upscaled to
    ``size`` px, three equal channels less ImageNet's channel means, or, with ``standardize``, each face at zero
    mean and a standard deviation of 64 grey levels (about a photo's, less its mean)."""

    def __init__(self, size: int, standardize: bool, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.standardize = bool(standardize)

    def call(self, x):
        x = keras.ops.image.resize(x, (self.size, self.size), interpolation="bilinear")
        if self.standardize:
            x = 64.0 * standardize_faces(x)
            return keras.ops.concatenate([x, x, x], axis=-1)
        means = keras.ops.convert_to_tensor(IMAGENET_MEAN_RGB, dtype=x.dtype)
        return keras.ops.concatenate([x, x, x], axis=-1) - means

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 3)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "standardize": self.standardize}


def build_network(cfg: TrainConfig) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    if cfg.backbone == "faceres":
        x = GreyToBackbone(cfg.backbone_input, cfg.standardize, dtype="float32", name="to_backbone")(inputs)
        x = faceres_layers(x, cfg.backbone_blocks, cfg.backbone_frozen_blocks)
        return _heads(cfg, inputs, layers.GlobalAveragePooling2D(name="gap")(x))
    if cfg.standardize:
        x = PerImageStandardization(dtype="float32", name="standardize")(inputs)
    else:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, dtype="float32", name="scale")(inputs)
    for stage, width in enumerate(cfg.widths):
        for i in range(cfg.convs_per_stage[stage]):
            x = layers.Conv2D(
                width,
                3,
                padding="same",
                use_bias=False,
                kernel_initializer="he_normal",
                name=f"s{stage}_conv{i}",
            )(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{i}")(x)
            x = layers.Activation("relu", name=f"s{stage}_relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"s{stage}_pool")(x)
        if cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout * (stage + 1) / len(cfg.widths), name=f"s{stage}_drop")(x)
    # faces are aligned crops, so where a feature sits matters: "flatten" keeps that, "gap" averages it away
    pool = layers.Flatten(name="flatten") if cfg.pooling == "flatten" else layers.GlobalAveragePooling2D(name="gap")
    return _heads(cfg, inputs, pool(x))


def _heads(cfg: TrainConfig, inputs, x) -> keras.Model:
    """The embedding and the two softmax heads on the pooled features ``x``."""
    if cfg.embed_batchnorm:
        x = layers.Dense(cfg.embed_units, use_bias=False, name="embed")(x)
        x = layers.BatchNormalization(name="embed_bn")(x)
        x = layers.Activation("relu", name="embed_relu")(x)
    else:
        x = layers.Dense(cfg.embed_units, activation="relu", name="embed")(x)
    if cfg.head_dropout > 0:
        x = layers.Dropout(cfg.head_dropout, name="head_drop")(x)
    # the output layers stay float32 under a mixed-precision policy (stable softmax, calibrated probabilities)
    out7 = layers.Dense(SCHEME7.size, activation="softmax", dtype="float32", name=OUTPUT7)(x)
    out4 = layers.Dense(SCHEME4.size, activation="softmax", dtype="float32", name=OUTPUT4)(x)
    return keras.Model(inputs, {OUTPUT7: out7, OUTPUT4: out4}, name=cfg.name.replace("-", "_"))
