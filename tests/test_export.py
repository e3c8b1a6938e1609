import subprocess
import sys

import numpy as np
import tensorflow as tf

from captioner import Captioner


def test_saved_model_gives_the_same_greedy_caption(trained_checkpoint, coco_fixture, tmp_path):
    out = tmp_path / "saved"
    result = subprocess.run([sys.executable, "-m", "captioner", "export", "--out", str(out),
                             "--checkpoint", str(trained_checkpoint[0])], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    model = Captioner.load(trained_checkpoint[0])
    for path in sorted(coco_fixture[1].iterdir())[:3]:
        outputs = serve(image_bytes=tf.constant(path.read_bytes()))
        expected = model.caption(path)
        assert outputs["caption"].numpy().decode() == expected.text
        assert [w.decode() for w in outputs["words"].numpy()] == expected.words
        np.testing.assert_allclose(outputs["probs"].numpy(), expected.probs, rtol=1e-3, atol=1e-4)
        assert outputs["attention"].shape == expected.attention.shape


def test_the_graph_spells_articles_as_the_api_does():
    from captioner.export import _agree_articles
    from captioner.vocab import agree_articles
    for text in ("a picture of a insect on the grass", "an dog and an apple and a orange",
                 "a unicorn and a one and a hour and a uninvited an utility", "a a dog an an apple",
                 "there is a", "an"):
        words = text.split()
        assert [w.decode() for w in _agree_articles(tf.constant(words)).numpy()] == agree_articles(words)
