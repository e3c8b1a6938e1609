"""The app's two API endpoints, called with gradio_client against a server this test starts."""
import socket
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from captioner import Captioner


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_checkpoint, tmp_path_factory):
    model = Captioner.load(trained_checkpoint[0]).warm_up()
    demo = app.build_app(model, examples_dir=tmp_path_factory.mktemp("none"))
    demo.queue(default_concurrency_limit=app.CONCURRENCY)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                max_file_size=app.MAX_FILE_SIZE, quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def test_the_api_lists_exactly_the_two_named_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == {"/caption", "/caption_url"}
    names = [p["parameter_name"] for p in named["/caption"]["parameters"]]
    assert names[:1] == ["image"] and "strategy" in names and "seed" in names
    assert all(p["parameter_has_default"] for p in named["/caption"]["parameters"][1:])


def test_caption_endpoint_returns_text_and_json(client, coco_fixture, trained_checkpoint):
    path = sorted(coco_fixture[1].iterdir())[0]
    start = time.perf_counter()
    outputs = client.predict(handle_file(str(path)), api_name="/caption")
    elapsed = time.perf_counter() - start
    print(f"/caption end to end through gradio_client: {elapsed * 1000:.0f} ms")
    text, details = outputs[0], outputs[1]
    assert text == Captioner.load(trained_checkpoint[0]).caption(path).text
    assert details["words"] == text.split() and len(details["probs"]) == len(details["words"])
    assert details["strategy"] == "greedy"


def test_sampling_through_the_api_repeats_with_a_seed(client, coco_fixture):
    path = handle_file(str(sorted(coco_fixture[1].iterdir())[2]))
    runs = [client.predict(path, strategy="sample", temperature=1.5, seed=7, api_name="/caption")[1]
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0]["seed"] == 7 and runs[0]["strategy"] == "sample"


def test_refused_url_gives_a_clear_error(client):
    with pytest.raises(AppError, match="not allowed"):
        client.predict("http://127.0.0.1/admin.png", api_name="/caption_url")
    with pytest.raises(AppError, match="Only http and https"):
        client.predict("file:///etc/passwd", api_name="/caption_url")


def test_not_an_image_gives_a_clear_error(client, tmp_path):
    fake = tmp_path / "photo.png"
    fake.write_text("this is not a picture")
    with pytest.raises(AppError):
        client.predict(handle_file(str(fake)), api_name="/caption")
