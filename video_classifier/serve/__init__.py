"""A trained model at work: `inference` (labels for videos), `timeline` (what happens when in a long
video), `live` (the same as a source plays), `onnx_export`, `quantize` and `openvino_backend` (exports and
their runtimes), `preview`, `web` and `live_page` (the Gradio page and a Space)."""
