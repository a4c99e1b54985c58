"""ClawFleet: a private OpenClaw assistant for everyone, self-hostable."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clawfleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
