"""Tests of the diffbypass-stardp plugin."""
