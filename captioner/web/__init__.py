"""The web page and its server: everything that only serves the Gradio page (app.py lays it out).

page.py      what the page's events and the two API endpoints do;  cards.py  what it says of the model
serving.py   what the server adds around Gradio: uploads only, every limit, messages
middleware.py the HTTP layer in front of Gradio's routes: upload quotas, closed routes, idle streams
urls.py      URLs from anyone, fetched safely;  heatmaps.py  attention pictures and downloads
bench.py     `make bench`: `python -m captioner bench` and the page's own figures (live camera)
fake_camera.py the live camera in Chromium, its camera playing a video (browser test, `make bench`)

The core package (model, decoding, api, train, the CLI, ...) never imports from here, so it runs
without Gradio or Starlette; this package imports the core, never the other way round.
"""
