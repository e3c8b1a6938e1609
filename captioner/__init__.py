"""captioner: image captioning with visual attention (Show, Attend and Tell) in TensorFlow 2 / Keras 3."""
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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines sent to /dev/null: absl's pre-init notice and,
    on a machine with no GPU, the CUDA probe's "failed call to cuInit ... (303)", which reads like a
    failure but is not one. The commands and the app call this first; CAPTIONER_TF_LOGS=1 keeps them."""
    if "tensorflow" in sys.modules or os.environ.get("CAPTIONER_TF_LOGS") == "1":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow as tf
        tf.config.list_physical_devices()             # the CUDA probe runs here, still silenced
    finally:
        os.dup2(saved, 2)
        os.close(saved)
