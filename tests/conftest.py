"""Shared fixtures. Stays Django-free so ``pytest tests/ml -p no:django`` runs without settings."""
