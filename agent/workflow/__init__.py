"""exfix workflow."""
