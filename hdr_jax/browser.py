"""The model for the browser: the shipped network as an ONNX graph, for onnxruntime-web.

Written by hand from the checkpoint's arrays with the `onnx` package (the `browser` extra),
not traced: the network is ten standard operators (Conv, BatchNormalization, Relu, MaxPool,
Gemm, Softmax), and a tracer such as jax2onnx would pin orbax-checkpoint below the versions
this project tests and pull in equinox, netron and huggingface-hub. The graph takes what
`preprocess` makes, float32 [batch, 28, 28, 1] in [0, 1], and gives the same probabilities
as `inference.Predictor` (tests/test_browser.py: all 10,000 test digits, within 1e-4).

`train.py export` writes it as `model.onnx` beside every inference checkpoint it makes; for
an existing checkpoint:

  python -m hdr_jax.browser --checkpoint checkpoints/alexnet-mnist
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BROWSER_MODEL = "model.onnx"  # Beside the orbax checkpoint it was made from.
OPSET = 17
POOLED = (0, 1, 4)  # Convs followed by 3x3/2 max-pooling, as in `model.AlexNet`.
BATCHNORM_EPSILON = 1e-5  # flax.nnx.BatchNorm's default.


def to_onnx(variables: dict, info: dict):
    """An `onnx.ModelProto` computing softmax(logits / temperature) of `model.AlexNet`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hdr_jax.model import MNIST_MEAN, MNIST_STD  # Here: serve.py imports this module.

    if info["model"].get("norm", "batch") != "batch":
        raise ValueError("only BatchNorm models are exported for the browser")
    params, stats = variables["params"], variables["batch_stats"]
    temperature = float(info.get("calibration", {}).get("temperature", 1.0))
    nodes, weights = [], []

    def constant(name: str, array: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    x = node("Transpose", ["images"], "nchw", perm=[0, 3, 1, 2])
    x = node("Sub", [x, constant("mean", np.array(MNIST_MEAN))], "centred")
    x = node("Div", [x, constant("std", np.array(MNIST_STD))], "normalised")
    for i in range(5):
        kernel = np.transpose(params["convs"][str(i)]["kernel"], (3, 2, 0, 1))  # HWIO -> OIHW
        x = node("Conv", [x, constant(f"conv{i}.w", kernel)], f"conv{i}", pads=[1, 1, 1, 1])
        norm, stat = params["norms"][str(i)], stats["norms"][str(i)]
        x = node("BatchNormalization",
                 [x, constant(f"bn{i}.scale", norm["scale"]), constant(f"bn{i}.bias", norm["bias"]),
                  constant(f"bn{i}.mean", stat["mean"]), constant(f"bn{i}.var", stat["var"])],
                 f"bn{i}", epsilon=BATCHNORM_EPSILON)
        x = node("Relu", [x], f"relu{i}")
        if i in POOLED:  # XLA's SAME padding puts the odd pixel last, as SAME_UPPER does.
            x = node("MaxPool", [x], f"pool{i}", kernel_shape=[3, 3], strides=[2, 2],
                     auto_pad="SAME_UPPER")
    x = node("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])  # Flattened as Flax flattens.
    x = node("Flatten", [x], "flat", axis=1)
    for name in ("fc1", "fc2", "head"):
        layer = params[name]
        x = node("Gemm", [x, constant(f"{name}.w", layer["kernel"]),
                          constant(f"{name}.b", layer["bias"])], name)
        if name != "head":
            x = node("Relu", [x], f"{name}.relu")
    x = node("Div", [x, constant("temperature", np.array(temperature))], "scaled")
    node("Softmax", [x], "probabilities", axis=1)
    graph = helper.make_graph(
        nodes, "hdr-jax", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                         ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                       ["batch", int(info["model"]["num_classes"])])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="hdr-jax")
    model.ir_version = 8  # What onnxruntime-web 1.17+ reads.
    onnx.checker.check_model(model)
    return model


def write_browser_model(checkpoint: str | Path, out: str | Path) -> Path:
    """Writes the checkpoint's network as ONNX to `out` (atomically) and returns the path."""
    from hdr_jax.checkpoint import load_inference

    variables, info = load_inference(checkpoint)
    out = Path(out)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(to_onnx(variables, info).SerializeToString())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    from hdr_jax.checkpoint import CheckpointError

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/alexnet-mnist")
    p.add_argument("--out", help="default: model.onnx in the checkpoint's folder")
    args = p.parse_args(argv)
    args.out = args.out or str(Path(args.checkpoint) / BROWSER_MODEL)
    try:
        path = write_browser_model(args.checkpoint, args.out)
    except ModuleNotFoundError as e:
        print(f"error: {e.name} is missing: pip install -e '.[browser]'", file=sys.stderr)
        return 2
    except (OSError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
