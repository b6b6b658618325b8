"""ember's benchmarks: ember beside NumPy and PyTorch, each in its own process.

Run ``python -m benchmarks.run [--quick]``; see ``benchmarks/README.md``.
"""
