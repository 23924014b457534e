"""roofline: predict how LLM-class workloads run on accelerator hardware."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("roofline")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
