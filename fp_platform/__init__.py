"""fp_platform: an open fraud platform whose whole run lifecycle is one Dagster asset graph."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fp-platform")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
