"""Stockade: a zero-trust runner and gateway for untrusted AI-agent tools."""

__version__ = "0.1.0"
__all__ = ["__version__"]
