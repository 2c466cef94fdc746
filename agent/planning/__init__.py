"""exfix planning."""
