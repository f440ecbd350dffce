"""Verification of emitted blocks against numpy golden models."""
