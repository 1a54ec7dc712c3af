"""Training and evaluation: `training` (a run as its phases), `trainer` (the Trainer with the fine-tuning
options), `evaluation` (multi-view metrics and plots), `scoring` (the loops that score videos and clips,
shared with inference), `features` (the cached backbone features of a probe) and `model_card` (the output
folder's README.md)."""
