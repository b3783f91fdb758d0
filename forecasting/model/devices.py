"""Every backend-specific call in one place: which devices there are, how several share the work, the
precision policy and the seeds. The rest of the model code speaks Keras 3 only."""

from __future__ import annotations

import contextlib
from typing import Any


def describe_device() -> str:
    """Which accelerator Keras will train on, in words, for the log and the model's metadata."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"GPU x{len(gpus)} (TensorFlow, cuDNN kernel)" if gpus else "CPU (TensorFlow)"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)} (PyTorch, cuDNN kernel)"
        return "CPU (PyTorch)"
    if backend == "jax":
        import jax

        return f"{'/'.join(sorted({d.platform for d in jax.devices()})).upper()} (JAX)"
    return f"{backend} backend"


def seed_everything(seed: int) -> None:
    """Same seed, same data, same CPU: same weights and forecasts (TensorFlow op determinism on too)."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def gpu_devices() -> list[str]:
    """Names of the GPUs the Keras backend will use ([] on a CPU machine): TensorFlow's logical GPUs,
    torch's CUDA devices, JAX's GPU devices."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices("GPU")]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices() if device.platform == "gpu"]
    return []


def replicas(devices: list[str]) -> int:
    """How many devices share each batch: all of them under TensorFlow's MirroredStrategy (see
    distribution_scope), else one (Keras places the model on a single device under torch and JAX)."""
    import keras

    if len(devices) > 1 and keras.backend.backend() == "tensorflow":
        return len(devices)
    return 1


def distribution_scope(devices: list[str]) -> Any:
    """`tf.distribute.MirroredStrategy` over `devices` when there are several (TensorFlow backend), else a
    no-op: with one device Keras places the model itself."""
    if replicas(devices) < 2:
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices).scope()


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Any:
    """Float16 compute with float32 weights for the duration of a build (the output layers stay float32)."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
