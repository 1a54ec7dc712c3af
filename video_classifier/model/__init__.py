"""The model: its description and input contract (`model_spec`), the attentive head (`heads`), loading and
saving checkpoints and processors (`modeling`), and what trains: whole, head only or LoRA (`trainable`)."""
