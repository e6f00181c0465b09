"""Shared fakes for the test suite: a local Anthropic Messages API server and fixture helpers."""
