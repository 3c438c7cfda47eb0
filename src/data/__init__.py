"""Canonical tables, the synthetic world and adapters for public datasets."""
