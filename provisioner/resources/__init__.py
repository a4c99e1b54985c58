"""Gateways' CPU and memory: sampled from the runtime by one platform process of all, kept a
day (the owner's chart), the latest of each cheap to read (the metrics, memory-aware restarts)."""
