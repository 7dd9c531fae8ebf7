"""The bypass against ES at their defaults, at equal step seconds and DP evaluations."""
