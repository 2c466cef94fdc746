"""exfix: finds and fixes the causes of Exchange '451 4.4.0 DNS query failed' across a fleet."""

__version__ = "0.1.0"
