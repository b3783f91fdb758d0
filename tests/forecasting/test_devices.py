"""Device handling: data-parallel training over several devices, mixed precision, cuDNN-eligible layers.

CI has no GPU, so MirroredStrategy is exercised over two logical CPU devices in a fresh process
(TensorFlow fixes its device list when it first starts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from forecasting.settings import PROJECT_ROOT

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from forecasting.model.config import ModelConfig
    from forecasting.model.training import fit_model
    from forecasting.windows import WindowSource
    series = np.random.default_rng(0).normal(size=100).astype("float32")
    source = WindowSource(series[:, None], series, {"train": np.arange(64), "val": np.arange(64, 80)}, 8, 3)
    config = ModelConfig(lookback=8, horizon=3, features=("value_scaled",), quantiles=(0.1, 0.5, 0.9), units=4,
                         layers=1, level_window=4, batch_size=16, seed=0)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    model, facts = fit_model(config, source, max_epochs=2, patience=1, devices=devices)
    variable = model.trainable_variables[0]
    print(json.dumps({"devices": devices, "facts_devices": facts["devices"],
                      "variable": type(getattr(variable, "value", variable)).__name__,
                      "loss_finite": bool(np.isfinite(facts["val_loss"]))}))
""")


def test_mirrored_training_over_two_logical_devices():
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["devices"]) == 2 and result["facts_devices"] == 2
    assert "Mirrored" in result["variable"]  # the weights live on both replicas
    assert result["loss_finite"]


def test_mixed_precision_keeps_outputs_and_weights_float32():
    import keras

    from forecasting.model.config import ModelConfig
    from forecasting.model.devices import precision_policy

    config = ModelConfig(lookback=8, horizon=3, features=("value_scaled",), quantiles=(0.1, 0.5, 0.9), units=4,
                         layers=1, level_window=4, seed=0)
    with precision_policy(True):
        model = config.build()
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the build
    assert model.get_layer("lstm_1").compute_dtype == "float16"
    assert all(w.dtype == "float32" for w in model.weights)
    out = model(np.zeros((2, 8, 1), "float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


class _Device:
    def __init__(self, platform: str, name: str):
        self.platform, self.name = platform, name

    def __str__(self) -> str:
        return self.name


def test_gpus_are_found_on_the_torch_and_jax_backends_and_only_tensorflow_mirrors_them(monkeypatch):
    """The GPU machine has torch and JAX, not TensorFlow: detection must not report the CPU there. The
    backends' device lists are stood in for (CI has neither library nor a GPU)."""
    import types

    import keras

    from forecasting.model import devices

    torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: True, device_count=lambda: 2))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    assert devices.gpu_devices() == ["cuda:0", "cuda:1"]
    assert devices.replicas(devices.gpu_devices()) == 1  # Keras trains on one of them: one batch share
    jax = types.SimpleNamespace(devices=lambda: [_Device("gpu", "cuda:0"), _Device("cpu", "TFRT_CPU_0")])
    monkeypatch.setitem(sys.modules, "jax", jax)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert devices.gpu_devices() == ["cuda:0"]
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    assert devices.gpu_devices() == []  # this CPU machine
    assert devices.replicas(["/device:GPU:0", "/device:GPU:1"]) == 2  # MirroredStrategy splits each batch
    assert devices.replicas([]) == 1


THREADS_SCRIPT = textwrap.dedent("""
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    import forecasting.model.network  # every model is built or loaded through it
    threading = tf.config.threading
    print(threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
""")


def test_cpu_ops_run_one_thread_each_with_as_many_at_once_as_there_are_cores_unless_the_environment_says():
    """What lets an ensemble's members train side by side on the CPU (members_side_by_side): it must be set
    before TensorFlow's first op, so it is checked in a fresh process."""
    import os

    inherited = {name: value for name, value in os.environ.items() if not name.startswith("TF_NUM_")}

    def threads(**environment):
        done = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True, timeout=300,
                              cwd=PROJECT_ROOT, env={**inherited, **environment})
        assert done.returncode == 0, done.stderr[-3000:]
        return tuple(int(n) for n in done.stdout.split()[-2:])

    assert threads() == (1, len(os.sched_getaffinity(0)))
    assert threads(TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="3") == (2, 3)


def test_an_ensemble_trains_its_members_side_by_side_only_on_the_cpu():
    from forecasting.model.devices import members_side_by_side

    assert members_side_by_side([])
    assert not members_side_by_side(["/device:GPU:0"])
