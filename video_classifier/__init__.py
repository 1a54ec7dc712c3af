"""Fine-tune and serve a video classifier. The package is a stack of layers, each importing only the ones
below it (declared in pyproject.toml's [tool.importlinter], checked by `make test`):

    serve     inference, timeline, ONNX export, the web page
    engine    training, evaluation, scoring, the features cache, the model card
    model     the model description, heads, loading and saving, what trains
    data      where bytes live, decoding, preprocessing, the prepared folder, datasets, the sources
    core      config, errors, the task, command-line pieces
"""
