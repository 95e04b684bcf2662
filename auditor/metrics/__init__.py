"""Quality metrics of explanations and of the model."""
