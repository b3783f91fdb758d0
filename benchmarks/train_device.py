"""Training throughput on the accelerator versus the CPU, on any Keras 3 backend.

    KERAS_BACKEND=torch python benchmarks/train_device.py [--windows 20000] [--lookback 168] [--units 64]

Runs the project's own model builder (tasks/model.py, Keras API only, so it needs nothing but Keras and a
backend) twice in fresh processes: once with every GPU hidden (CUDA_VISIBLE_DEVICES=""), once with the
machine as it is. Prints windows/s for each and their ratio. On a machine without an accelerator both
runs are CPU runs and the ratio is about 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(args: argparse.Namespace) -> dict:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import keras

    from tasks.model import build_forecaster, is_cudnn_eligible, recurrent_layers

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.windows, args.lookback, 5)).astype("float32")  # [windows, lookback, features]
    y = rng.normal(size=(args.windows, args.horizon)).astype("float32")
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    model = build_forecaster(lookback=args.lookback, horizon=args.horizon, n_features=5, units=args.units,
                             layers=2, dropout=0.2, level_window=24, seed=0)
    model.fit(x[: args.batch * 2], y[: args.batch * 2], batch_size=args.batch, epochs=1, verbose=0)  # warm-up
    started = time.perf_counter()
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - started
    device = "cpu"
    if keras.backend.backend() == "torch":
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    elif keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0].platform
    return {"backend": keras.backend.backend(), "device": device, "seconds": seconds,
            "windows_per_s": args.windows * args.epochs / seconds,
            "cudnn_eligible": all(is_cudnn_eligible(layer) for layer in recurrent_layers(model))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--lookback", type=int, default=168)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return 0
    results = {}
    for name, hide in (("cpu", True), ("as is", False)):
        env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if hide else {})}
        done = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            sys.exit(f"{name} run failed:\n{done.stderr[-3000:]}")
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    cpu, accel = results["cpu"], results["as is"]
    print(f"backend {accel['backend']}; {args.windows} windows x {args.epochs} epochs, lookback {args.lookback}, "
          f"2 x {args.units} units, batch {args.batch}; cuDNN-eligible layers: {accel['cudnn_eligible']}")
    print(f"{'device':<28}{'windows/s':>12}")
    print(f"{cpu['device']:<28}{cpu['windows_per_s']:>12.0f}")
    print(f"{accel['device']:<28}{accel['windows_per_s']:>12.0f}")
    print(f"accelerator / CPU: {accel['windows_per_s'] / cpu['windows_per_s']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
