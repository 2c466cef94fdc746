"""Frozen, typed values that pass between the stages of the pipeline."""
