"""exfix apply."""
