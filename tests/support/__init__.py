"""Shared pytest plugins and helpers; registered from tests/conftest.py."""
