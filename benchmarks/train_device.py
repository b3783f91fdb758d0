"""Training throughput on the accelerator versus the CPU, on any Keras 3 backend.

    KERAS_BACKEND=torch python benchmarks/train_device.py [--windows 40000] [--cpu-windows 4096]

Builds the project's own network (forecasting/model/network.py: Keras API only, so it needs nothing but Keras and a
backend) and trains it in fresh processes: once with every GPU hidden (CUDA_VISIBLE_DEVICES="", the
reference, at the CPU batch size), then on the machine as it is at the CPU batch size, at the GPU batch
size, at the GPU batch size with mixed precision, and at the GPU batch size fed batch by batch from
shared series arrays the way the pipeline feeds it (forecasting/model/dataset.py). Prints windows/s of each
and its ratio to the CPU. On a machine without an accelerator every run is a CPU run.

The CPU reference trains on fewer windows (`--cpu-windows`) so that it stays short; windows/s does not
depend on the count. Under the PyTorch backend the script also counts the calls that went through
Keras' cuDNN LSTM path (Keras silently falls back to a Python loop over time steps when cuDNN refuses).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name, hide the accelerator, batch size flag, mixed precision, streamed input
VARIANTS = (
    ("cpu, batch 256", True, "batch", False, False),
    ("accelerator, batch 256", False, "batch", False, False),
    ("accelerator, batch 1024", False, "gpu_batch", False, False),
    ("accelerator, batch 1024, mixed fp16", False, "gpu_batch", True, False),
    ("accelerator, batch 1024, streamed", False, "gpu_batch", False, True),
)


def count_cudnn_calls() -> dict:
    """Wrap the PyTorch backend's cuDNN LSTM entry point so successful calls are counted."""
    calls = {"cudnn": 0}
    import importlib

    try:  # the module, not the `rnn` function the package re-exports under the same name
        rnn = importlib.import_module("keras.src.backend.torch.rnn")
    except ImportError:
        return calls
    original = rnn._cudnn_lstm

    def counted(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["cudnn"] += 1
        return result

    rnn._cudnn_lstm = counted
    return calls


def streamed(features, target, starts, lookback: int, horizon: int, batch: int):
    """The pipeline's input path: each batch one gather from the shared arrays (forecasting/model/dataset.py)."""
    import keras
    import numpy as np

    offsets, ahead = np.arange(lookback), np.arange(horizon)

    class Windows(keras.utils.PyDataset):
        def __len__(self):
            return math.ceil(len(starts) / batch)

        def __getitem__(self, index):
            chosen = starts[index * batch:(index + 1) * batch]
            return features[chosen[:, None] + offsets], target[chosen[:, None] + lookback + ahead]

    return Windows()


def measure(args: argparse.Namespace) -> dict:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import keras

    from forecasting.model.network import build_forecaster, is_cudnn_eligible, recurrent_layers

    calls = count_cudnn_calls()
    # 0: 40,000 windows on an accelerator, the CPU reference's count where there is none (keeps CPU runs short)
    windows = args.windows or (args.cpu_windows if device_name() == "cpu" else 40000)
    rng = np.random.default_rng(0)
    n_features = 5
    # One long array the windows are cut from; the in-memory variant materialises them all up front.
    rows = windows + args.lookback + args.horizon
    features = rng.normal(size=(rows, n_features)).astype("float32")
    target = features[:, 0].copy()
    starts = rng.permutation(windows).astype("int64")
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_forecaster(lookback=args.lookback, horizon=args.horizon, n_features=n_features,
                             units=args.units, layers=2, dropout=0.2, level_window=24, seed=0)
    if args.streamed:
        data = streamed(features, target, starts, args.lookback, args.horizon, args.batch)
        fit = lambda epochs: model.fit(data, epochs=epochs, verbose=0)  # noqa: E731
        warm_up = streamed(features, target, starts[: args.batch * 2], args.lookback, args.horizon, args.batch)
        model.fit(warm_up, epochs=1, verbose=0)
    else:
        x = features[starts[:, None] + np.arange(args.lookback)]
        y = target[starts[:, None] + args.lookback + np.arange(args.horizon)]
        fit = lambda epochs: model.fit(x, y, batch_size=args.batch, epochs=epochs, verbose=0)  # noqa: E731
        model.fit(x[: args.batch * 2], y[: args.batch * 2], batch_size=args.batch, epochs=1, verbose=0)
    started = time.perf_counter()
    fit(args.epochs)
    seconds = time.perf_counter() - started
    return {"backend": keras.backend.backend(), "device": device_name(), "seconds": seconds, "windows": windows,
            "windows_per_s": windows * args.epochs / seconds, "cudnn_calls": calls["cudnn"],
            "cudnn_eligible": all(is_cudnn_eligible(layer) for layer in recurrent_layers(model))}


def device_name() -> str:
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    return backend


def child(args: argparse.Namespace, name: str, hide: bool, batch_flag: str, mixed: bool, stream: bool) -> dict:
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if hide else {})}
    batch = args.batch if batch_flag == "batch" else args.gpu_batch
    windows = args.cpu_windows if hide else args.windows
    command = [sys.executable, __file__, "--child", "--windows", str(windows), "--lookback", str(args.lookback),
               "--horizon", str(args.horizon), "--units", str(args.units), "--batch", str(batch),
               "--epochs", str(args.epochs), *(["--mixed-precision"] if mixed else []),
               *(["--streamed"] if stream else [])]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return {"name": name, "batch": batch, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=0,
                        help="windows per epoch on the accelerator (default: 40000, or --cpu-windows without one)")
    parser.add_argument("--cpu-windows", type=int, default=4096, help="windows per epoch for the CPU reference")
    parser.add_argument("--lookback", type=int, default=168)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256, help="the CPU batch size (Settings.batch_size)")
    parser.add_argument("--gpu-batch", type=int, default=1024, help="the GPU batch size (Settings.gpu_batch_size)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mixed-precision", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--streamed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return 0
    results = []
    for variant in VARIANTS:
        result = child(args, *variant)
        results.append(result)
        print(f"  measured {variant[0]}: {result.get('windows_per_s', result.get('error'))}", flush=True)
    reference = results[0].get("windows_per_s")
    print(f"\nbackend {results[0].get('backend', '?')}; lookback {args.lookback}, horizon {args.horizon}, "
          f"2 x {args.units} units, {args.epochs} epochs")
    print(f"{'variant':<40}{'device':<26}{'windows/s':>11}{'x CPU':>8}{'cuDNN calls':>13}")
    for result in results:
        if "error" in result:
            print(f"{result['name']:<40}failed: {result['error']}")
            continue
        ratio = result["windows_per_s"] / reference if reference else float("nan")
        print(f"{result['name']:<40}{result['device'][:25]:<26}{result['windows_per_s']:>11.0f}{ratio:>8.1f}"
              f"{result['cudnn_calls']:>13}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all("error" not in result for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
