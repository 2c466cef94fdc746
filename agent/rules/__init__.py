"""exfix rules."""
