"""`python app.py --share` (and `make demo SHARE=1`): Gradio is asked for a public share link; where
none can be made one line says so and the local server keeps serving. Gradio's share server is never
reached here: its tunnel function is replaced, as offline it fails before any connection."""
import urllib.request

import gradio.networking
import pytest

import app
from captioner import Captioner
from conftest import free_port


@pytest.fixture
def tiny_model(trained_checkpoint):
    return Captioner.load(trained_checkpoint[0])


def serve_shared(model, tmp_path, said: list):
    demo = app.build_app(model, examples_dir=tmp_path)
    app.serve(demo, share=True, say=said.append, server_name="127.0.0.1", server_port=free_port(),
              prevent_thread_lock=True, quiet=True)
    return demo


def test_offline_one_line_says_there_is_no_share_link_and_the_local_server_serves(tiny_model, tmp_path,
                                                                                    monkeypatch):
    asked, said = [], []

    def offline(**where):
        asked.append(where)
        raise RuntimeError("Could not get share link from Gradio API Server.")
    monkeypatch.setattr(gradio.networking, "setup_tunnel", offline)
    demo = serve_shared(tiny_model, tmp_path, said)
    try:
        assert asked and asked[0]["local_port"] == demo.server_port        # the launch asked for a link
        assert [line for line in said if "share" in line.lower()] == [
            "* No share link: Gradio's share server cannot be reached (offline?); serving locally only."]
        assert f"* Running on local URL: {demo.local_url}" in said
        with urllib.request.urlopen(demo.local_url, timeout=30) as page:   # loopback only
            assert page.status == 200 and b"Captioner" in page.read()
    finally:
        demo.close()


def test_a_share_link_made_is_printed(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(gradio.networking, "setup_tunnel", lambda **where: "https://0123abcd.gradio.live")
    said = []
    demo = serve_shared(tiny_model, tmp_path, said)
    try:
        assert "* Share link (public while this runs): https://0123abcd.gradio.live" in said
        assert demo.share_url == "https://0123abcd.gradio.live"
    finally:
        demo.close()


def test_the_command_line_asks_for_a_share_link(tiny_model, monkeypatch):
    served = {}
    monkeypatch.setattr(Captioner, "load", classmethod(lambda cls, checkpoint=None: tiny_model))
    monkeypatch.setattr(app, "serve", lambda demo, **options: served.update(options))
    assert app.main(["--share"]) == 0 and served["share"] is True
    assert app.main([]) == 0 and served["share"] is False
