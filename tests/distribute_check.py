"""Run in a fresh process (logical devices must be set before TensorFlow starts): train the same
data with one device and with MirroredStrategy over 2 logical CPUs; print both loss curves."""
import json
import sys
import tempfile

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from captioner.config import CheckpointConfig, ModelConfig, TrainConfig  # noqa: E402
from captioner.data import caption_dataset  # noqa: E402
from captioner.train import fit  # noqa: E402
from captioner.vocab import Vocabulary  # noqa: E402


def run(distribute: str, out: str) -> list[float]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(16, 9, 8)).astype(np.float16)
    words = ["red", "blue", "green", "square", "circle"]
    captions = [f"a {words[i % 3]} {words[3 + i % 2]}" for i in range(16)]
    vocab = Vocabulary.fit(captions)
    tokens = [vocab.encode(c) for c in captions]
    data = caption_dataset(features, np.arange(16), tokens, batch_size=8, max_words=4, shuffle=True,
                           seed=0, drop_remainder=True)
    model = ModelConfig(vocab_size=len(vocab), grid_size=3, feature_dim=8, embedding_dim=16, units=16,
                        dropout=0.0)
    train = TrainConfig(out=out, epochs=4, batch_size=8, learning_rate=1e-2, distribute=distribute)
    return fit(CheckpointConfig(model=model, train=train), vocab, data, None, 2, progress=False)["loss"]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        single = run("none", f"{tmp}/single")
        mirrored = run("mirrored", f"{tmp}/mirrored")
    print(json.dumps({"single": single, "mirrored": mirrored,
                      "replicas": len(tf.config.list_logical_devices("CPU"))}))
    sys.stdout.flush()
