"""Saving, loading and exchanging tensors: safetensors checkpoints, DLPack."""
