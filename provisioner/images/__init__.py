"""The OpenClaw container image the docker runtime runs.

recipe.py declares what the image must be (the contract both recipes keep); images/openclaw/
Dockerfile builds it from a registry; offline.py builds it here without one.
"""
