"""Lab DNS: the DNS world of a scenario (pure) and loopback responders that serve it (dnspython)."""
