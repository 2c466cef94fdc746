"""exfix transport."""
