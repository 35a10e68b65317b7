"""Delivery: the outbox sender and what it needs (rate limits)."""
