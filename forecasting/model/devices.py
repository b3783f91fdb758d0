"""Every backend-specific call in one place: which devices there are, how several share the work, the
precision policy and the seeds. The rest of the model code speaks Keras 3 only."""

from __future__ import annotations

import contextlib
import os
from typing import Any

# A CPU network's ops are small (a batch of 128 windows through 32 units): splitting one op across threads
# costs more in hand-offs than it gains, and it is what keeps an ensemble's members from stepping side by
# side (members_side_by_side). So on the CPU each op runs on one thread, with as many ops at once as there
# are cores. Alone, one network trains in the same time either way (the bundled panel: 4.6-5.6 s both); an
# 8-year daily series' three networks side by side took 15.3-16.3 s against 17.4-17.6 s with TensorFlow's
# defaults (two threads an op). The price: one network's forecasts for thousands of windows at once run on
# one core (4,096 daily windows: 0.18 s a call against 0.14 s), which costs a panel's explanations about
# 0.2 s a run; an ensemble's members predict side by side and do not notice. Weights are bit-identical
# either way. TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, where set, win.
_threads_configured = False


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


def configure_cpu_threads() -> None:
    """On TensorFlow without a GPU, run each op on one thread and as many ops at once as there are cores
    (see above). Must come before TensorFlow's first op, which fixes its thread pools: network.py calls it
    when imported (every model is built or loaded through it) and gpu_devices() before it lists devices.
    Later calls, and calls after an op already ran in this process, change nothing."""
    global _threads_configured
    if _threads_configured:
        return
    _threads_configured = True
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    intra = int(os.environ.get("TF_NUM_INTRAOP_THREADS") or 1)
    inter = int(os.environ.get("TF_NUM_INTEROP_THREADS") or len(os.sched_getaffinity(0)))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # an op already ran (a caller used TensorFlow first): its pools stay as they are
        pass


def members_side_by_side(devices: list[str]) -> bool:
    """Whether an ensemble's members train at the same time, each on its own thread and network
    (TensorFlow on the CPU), rather than one after another on one network (MemberTrainer).

    Why: on the CPU one small network's step leaves a core idle while its ops hand over to each other (two
    cores: a daily network's step 14-17 ms alone; three stepping at once 8-9 ms each). TensorFlow releases
    the interpreter lock while a compiled step runs. The members share one traced training and test step
    (forecasting/model/shared_steps.py); with Keras' own steps each traced its own (about 1 s a member on
    two cores; Python, so not in parallel). fit_model alone on two cores, same weights: a year of one
    hourly series (three networks, 27 epochs in all) 28.7-32.6 s against 41-44 s in turn; an 8-year daily
    series (43 epochs of smaller windows) 15.3-16.3 s against 16.7-18.7 s. A GPU or several devices keep
    the members in turn: a step there is one fused kernel call per layer."""
    import keras

    return not devices and keras.backend.backend() == "tensorflow"


def gpu_devices() -> list[str]:
    """Names of the GPUs the Keras backend will use ([] on a CPU machine): TensorFlow's logical GPUs,
    torch's CUDA devices, JAX's GPU devices."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        configure_cpu_threads()  # listing logical devices starts TensorFlow's runtime: threads first

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
