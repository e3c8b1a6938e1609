"""captioner: image captioning with visual attention (Show, Attend and Tell) in TensorFlow 2 / Keras 3."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # TensorFlow's start-up chatter hides real output

__all__ = ["Caption", "Captioner"]
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import captioner.images` (the light input checks) does not load TensorFlow.
    if name in __all__:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'captioner' has no attribute {name!r}")
