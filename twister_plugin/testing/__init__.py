"""Helpers that build tiny real data and models for tests."""
