"""Triton kernels of orthocore, one module per op family, each with its launcher.

Installed as ``orthocore.kernels``. Importing a module imports Triton; the launchers take
CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``.
"""
