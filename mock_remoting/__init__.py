"""The exfix lab: a real WS-Management + PSRP server on 127.0.0.1 that emulates Exchange hosts.

See README.md beside this file for the scenario format.
"""
