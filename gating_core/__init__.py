"""Gated residual networks for CIFAR: models, gates, data, training and per-sample evaluation.

This package is the library behind GateLab. It imports no web, database or
queue code, so a script or a notebook can use it alone.
"""
