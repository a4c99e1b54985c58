"""The platform's Prometheus metrics: their definitions, on a registry the platform owns.

Every layer records into them (the web app, the bot, the provisioner, billing, the model
gateway), so they live below all of them: this package imports nothing of the project's, and
every layer may import it. `web.metrics` serves them at GET /metrics.
"""

from metrics.families import Metrics

__all__ = ["Metrics"]
