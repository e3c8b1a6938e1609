"""captioner: image captioning with visual attention (Show, Attend and Tell) in TensorFlow 2 / Keras 3."""
import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # TensorFlow's start-up chatter hides real output

__all__ = ["Caption", "Captioner"]
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import captioner.images` (the light input checks) does not load TensorFlow.
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'captioner' has no attribute {name!r}")


@contextlib.contextmanager
def quiet_stderr():
    """Native libraries' start-up lines (written to fd 2 from C++) sent to /dev/null while the
    block runs; CAPTIONER_TF_LOGS=1 keeps them."""
    if os.environ.get("CAPTIONER_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow without its C++ start-up lines: absl's pre-init notice and, on a machine
    with no GPU, the CUDA probe's "failed call to cuInit ... (303)", which reads like a failure but
    is not one. The commands and the app call this first."""
    if "tensorflow" in sys.modules:
        return
    with quiet_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()             # the CUDA probe runs here, still silenced
