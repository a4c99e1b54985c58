"""Runtimes: backend I/O for running gateways (the manager does the orchestration)."""
