"""GateLab: run and analyse gating experiments on residual networks."""

__version__ = "0.1.0"
