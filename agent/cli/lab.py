"""``exfix lab``: run the lab (being built)."""

import click


@click.group()
def lab() -> None:
    """Run the lab: emulated Exchange hosts on 127.0.0.1."""
