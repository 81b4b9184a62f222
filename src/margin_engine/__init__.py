"""margin-engine: margin requirements for crypto derivatives."""

__version__ = "0.1.0"
