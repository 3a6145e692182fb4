"""Reporters: they turn results into text, JSON or GitHub Actions output, and never decide anything."""
