"""The emotion network, in backend-agnostic Keras 3.

One convolutional backbone, two softmax heads: ``emotion7`` (FER order) and
``emotion4`` (Areya's scheme), so both schemes come from one forward pass.
Input: 48x48x1 grayscale in [0, 255] (float); the model scales it itself.
Augmentation is a separate block wrapped around the model only for training,
so the served model holds no random layers.
"""

from __future__ import annotations

import keras
from keras import layers

from areya.emotion.dataset import IMAGE_SIZE
from areya.emotion.schemes import SCHEME4, SCHEME7
from areya.emotion.train_config import TrainConfig

OUTPUT7 = "emotion7"
OUTPUT4 = "emotion4"


@keras.saving.register_keras_serializable(package="areya")
class PerImageStandardization(layers.Layer):
    """Each face to zero mean, unit variance: removes lighting and contrast differences between faces."""

    def call(self, x):
        mean = keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = keras.ops.std(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) / (std + 1.0)


def build_network(cfg: TrainConfig) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    if cfg.standardize:
        x = PerImageStandardization(name="standardize")(inputs)
    else:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
    if cfg.input_downsample > 1:
        x = layers.AveragePooling2D(cfg.input_downsample, name="downsample")(x)
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
    x = pool(x)
    x = layers.Dense(cfg.embed_units, use_bias=False, name="embed")(x)
    x = layers.BatchNormalization(name="embed_bn")(x)
    x = layers.Activation("relu", name="embed_relu")(x)
    if cfg.head_dropout > 0:
        x = layers.Dropout(cfg.head_dropout, name="head_drop")(x)
    out7 = layers.Dense(SCHEME7.size, activation="softmax", name=OUTPUT7)(x)
    out4 = layers.Dense(SCHEME4.size, activation="softmax", name=OUTPUT4)(x)
    return keras.Model(inputs, {OUTPUT7: out7, OUTPUT4: out4}, name=cfg.name.replace("-", "_"))


def build_augmenter(cfg: TrainConfig, seed: int) -> keras.Sequential:
    """Random geometric and photometric augmentation (active only in training)."""
    aug: list[layers.Layer] = []
    if cfg.flip:
        aug.append(layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotate_degrees > 0:
        aug.append(layers.RandomRotation(cfg.rotate_degrees / 360.0, fill_mode="reflect", seed=seed + 1))
    if cfg.zoom > 0:
        aug.append(layers.RandomZoom((-cfg.zoom, cfg.zoom), fill_mode="reflect", seed=seed + 2))
    if cfg.translate > 0:
        aug.append(layers.RandomTranslation(cfg.translate, cfg.translate, fill_mode="reflect", seed=seed + 3))
    if cfg.contrast > 0:
        aug.append(layers.RandomContrast(cfg.contrast, value_range=(0, 255), seed=seed + 4))
    if cfg.brightness > 0:
        aug.append(layers.RandomBrightness(cfg.brightness, value_range=(0, 255), seed=seed + 5))
    return keras.Sequential(aug, name="augment")


def build_training_model(network: keras.Model, cfg: TrainConfig) -> keras.Model:
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    x = build_augmenter(cfg, cfg.seed)(inputs)
    return keras.Model(inputs, network(x), name="train")
