"""The benchmark runs end to end and reports every figure (speed itself is judged by `make bench`)."""
from captioner import Captioner
from captioner.bench import eager_greedy, markdown_table, run_benchmarks
from captioner.vocab import agree_articles


def test_bench_reports_every_figure(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    image = sorted(coco_fixture[1].iterdir())[0]
    before = [w.copy() for w in model.checkpoint.model.get_weights()]
    figures = run_benchmarks(model, image, repeats=3)
    for key in ("greedy_speedup", "train_speedup", "end_to_end_p50_ms", "beam3_over_greedy", "encoder_ms_per_image",
                "batch16_images_per_s", "train_captions_per_s", "feature_extraction_images_per_s"):
        assert key in figures, key
    assert all(figures[k] > 0 for k in ("greedy_ms", "eager_greedy_ms", "train_step_ms", "eager_train_step_ms"))
    assert all((a == b).all() for a, b in zip(before, model.checkpoint.model.get_weights()))   # served model untouched
    assert "| Greedy speed-up" in markdown_table(figures)


def test_the_eager_baseline_gives_the_same_caption(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    result = model.caption(sorted(coco_fixture[1].iterdir())[1])
    features = model.features([result.image])
    # The baseline is the tutorial's bare loop: articles spelt as the API spells them, and no repeat
    # ban (this caption has no four words twice, so the ban cannot have changed it).
    words = agree_articles(model.vocab.decode(eager_greedy(model.checkpoint.model, features, model.config.max_length)))
    assert words == result.words
