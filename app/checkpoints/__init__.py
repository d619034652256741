"""Hosted checkpoints: files, manifests, blob store and access levels."""
