"""Rendering of hunt results: terminal tables and JSON Lines."""
