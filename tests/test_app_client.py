"""The app's two API endpoints, called with gradio_client against a server this test starts."""
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from captioner import Captioner


@pytest.fixture(scope="module")
def server(tiny_app):
    return tiny_app.local_url


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def test_the_api_lists_exactly_the_two_named_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == {"/caption", "/caption_url"}
    options = ["strategy", "temperature", "top_k", "beam_size", "seed", "num_samples", "max_length", "length_alpha"]
    for name, first in (("/caption", "image"), ("/caption_url", "url")):
        parameters = named[name]["parameters"]
        assert [p["parameter_name"] for p in parameters] == [first, *options]
        assert all(p["parameter_has_default"] for p in parameters[1:])
        assert [r["component"] for r in named[name]["returns"]] == ["Textbox", "Json"]
    assert not client.view_api(print_info=False, return_format="dict")["unnamed_endpoints"]


def test_caption_endpoint_returns_text_and_json(client, coco_fixture, trained_checkpoint):
    path = sorted(coco_fixture[1].iterdir())[0]
    start = time.perf_counter()
    outputs = client.predict(handle_file(str(path)), api_name="/caption")
    elapsed = time.perf_counter() - start
    print(f"/caption end to end through gradio_client: {elapsed * 1000:.0f} ms")
    text, details = outputs
    assert text == Captioner.load(trained_checkpoint[0]).caption(path).text
    assert details["words"] == text.split() and len(details["probs"]) == len(details["words"])
    assert details["strategy"] == "greedy"


def test_sampling_through_the_api_repeats_with_a_seed(client, coco_fixture):
    path = handle_file(str(sorted(coco_fixture[1].iterdir())[2]))
    runs = [client.predict(path, strategy="sample", temperature=1.5, seed=7, api_name="/caption")[1]
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0]["seed"] == 7 and runs[0]["strategy"] == "sample"


def test_several_samples_come_back_in_the_json(client, coco_fixture):
    path = handle_file(str(sorted(coco_fixture[1].iterdir())[1]))
    text, details = client.predict(path, strategy="sample", temperature=2.0, seed=5, num_samples=4,
                                   api_name="/caption")
    log_probs = [s["log_prob"] for s in details["samples"]]
    assert len(log_probs) == 4 and log_probs == sorted(log_probs, reverse=True)
    assert text == details["samples"][0]["caption"]


def test_refused_url_gives_a_clear_error(client):
    with pytest.raises(AppError, match="not allowed"):
        client.predict("http://127.0.0.1/admin.png", api_name="/caption_url")
    with pytest.raises(AppError, match="Only http and https"):
        client.predict("file:///etc/passwd", api_name="/caption_url")


def test_not_an_image_gives_a_clear_error(client, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    with pytest.raises(AppError, match="Not an image") as caught:
        client.predict(handle_file(str(fake)), api_name="/caption")
    assert "Traceback" not in str(caught.value) and "Something went wrong" not in str(caught.value)
    print(f"not an image -> {caught.value}")


def test_uploads_over_the_size_cap_are_refused(client, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024))      # 11 MB, over the 10 MB cap
    with pytest.raises(Exception, match="(?i)too large|413|exceed|size"):
        client.predict(handle_file(str(big)), api_name="/caption")


def test_sampling_with_no_seed_draws_a_new_seed_that_repeats_its_caption(client, coco_fixture):
    path = handle_file(str(sorted(coco_fixture[1].iterdir())[3]))
    runs = [client.predict(path, strategy="sample", temperature=2.0, api_name="/caption") for _ in range(3)]
    seeds = [details["seed"] for _, details in runs]
    assert len(set(seeds)) == 3 and all(isinstance(seed, int) for seed in seeds)
    for text, details in runs:
        again = client.predict(path, strategy="sample", temperature=2.0, seed=details["seed"], api_name="/caption")
        assert again[0] == text
    assert client.predict(path, strategy="sample", seed=7, max_length=1, api_name="/caption")[1]["cut"] in (True, False)
