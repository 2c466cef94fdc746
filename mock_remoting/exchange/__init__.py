"""Emulated Exchange hosts: scenario loading, host state, cmdlets, serialization, mail flow."""
