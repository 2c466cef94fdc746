"""exfix report."""
