"""Accuracy benchmark: verification, identification, detection counts and face sizes, through the real pipeline."""
