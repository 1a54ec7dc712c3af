"""The model: its description and input contract (`model_spec`), the attentive head (`heads`), loading and
saving checkpoints and processors (`modeling`), what trains: whole, head only or LoRA (`trainable`), and how
a trained model answers: its number format (`precision`), compiled or not (`compiling`)."""
