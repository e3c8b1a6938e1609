"""The benchmark runs end to end and reports every figure (speed itself is judged by `make bench`)."""
import captioner.__main__ as cli
from captioner import Captioner
from captioner.bench import eager_greedy, markdown_table, run_benchmarks
from captioner.vocab import agree_articles
from captioner.web import bench as web_bench


def test_bench_reports_every_figure(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    image = sorted(coco_fixture[1].iterdir())[0]
    before = [w.copy() for w in model.checkpoint.model.get_weights()]
    figures = run_benchmarks(model, image, repeats=3, sections=web_bench.SECTIONS)    # as `make bench`
    for key in ("greedy_speedup", "train_speedup", "end_to_end_p50_ms", "beam3_over_greedy", "encoder_ms_per_image",
                "batch16_images_per_s", "train_captions_per_s", "feature_extraction_images_per_s", "live_fps"):
        assert key in figures, key
    assert all(figures[k] > 0 for k in ("greedy_ms", "eager_greedy_ms", "train_step_ms", "eager_train_step_ms"))
    assert all((a == b).all() for a, b in zip(before, model.checkpoint.model.get_weights()))   # served model untouched
    assert "| Greedy speed-up" in markdown_table(figures) and "| Live camera mode" in markdown_table(figures)


def test_make_bench_is_the_cli_bench_with_the_pages_figures(monkeypatch):
    # The core's `python -m captioner bench` never loads the page; `make bench` runs it through
    # captioner.web.bench, which adds the page's sections (the live camera).
    seen = []
    monkeypatch.setattr(cli, "cmd_bench", lambda args, sections=(): seen.append((args.json, args.repeats, sections)) or 0)
    assert web_bench.main(["--json", "--repeats", "3"]) == 0
    assert seen == [(True, 3, web_bench.SECTIONS)] and web_bench.bench_live in web_bench.SECTIONS


def test_the_eager_baseline_gives_the_same_caption(trained_checkpoint, coco_fixture):
    model = Captioner.load(trained_checkpoint[0])
    result = model.caption(sorted(coco_fixture[1].iterdir())[1])
    features = model.features([result.image])
    # The baseline is the tutorial's bare loop: articles spelt as the API spells them, and no repeat
    # ban (this caption has no four words twice, so the ban cannot have changed it).
    words = agree_articles(model.vocab.decode(eager_greedy(model.checkpoint.model, features, model.config.max_length)))
    assert words == result.words
