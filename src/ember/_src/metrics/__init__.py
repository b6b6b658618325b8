"""Streaming metrics (public as ``ember.metrics``)."""
