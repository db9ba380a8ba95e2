"""Seeded incident simulator: a fleet, its signals, injected faults and the gold answers."""
