"""The bottom layer: the typed config (`config`), the one user-facing error (`errors`), what a label means
(`task`: scores, loss, metrics), the command-line pieces the scripts share (`cli`), the run folder's
names and rules (`run_folder`) and the cores this process may use (`cpus`)."""
