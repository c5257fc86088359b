"""Helpers shared by test modules (importable because pytest puts the repository root on sys.path)."""
