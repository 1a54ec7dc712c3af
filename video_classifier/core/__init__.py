"""The bottom layer: the typed config (`config`), the one user-facing error (`errors`), what a label means
(`task`: scores, loss, metrics) and the command-line pieces the scripts share (`cli`)."""
