"""Bringing exports into the store: read, map, validate (vectorised), reject with reasons, load."""
