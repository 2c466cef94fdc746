"""exfix collect."""
