"""A short load test (the full one is `make loadtest`): concurrent clients, same answers, flat memory,
and the report of where the time went."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from loadtest import run  # noqa: E402


def test_concurrent_clients_all_answered_identically_with_flat_memory(trained_checkpoint, coco_fixture):
    images = [str(p) for p in sorted(coco_fixture[1].iterdir())[:3]]
    report = run(clients=6, requests=3, images=images, checkpoint=str(trained_checkpoint[0]), hostile_seconds=3)
    print(report)
    assert report["answered"] == report["requests"] == 18 and report["error_count"] == 0
    assert report["captions_identical"]
    assert report["rss_ratio"] <= 1.2
    assert set(report["stage_ms"]) == {"upload", "queue", "decode", "model_wait", "model", "pictures"}
    assert sum(size * calls for size, calls in report["model_calls_by_batch_size"].items()) == 18
    assert report["server_cpu_ms_per_request"] > 0 and report["clients_cpu_ms_per_request"] > 0
    assert report["hostile_requests"] >= 4 and report["hostile_all_handled"]      # and the lone client
    assert report["lone_caption_during_hostile_p50_s"] > 0                       # was answered meanwhile
