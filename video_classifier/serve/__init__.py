"""A trained model at work: `inference` (labels for videos), `timeline` (what happens when in a long
video), `onnx_export` (ONNX export and the onnxruntime backend) and `web` (the Gradio page and a Space)."""
