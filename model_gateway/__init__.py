"""The platform's model gateway: the HTTP proxy between instances' OpenClaw gateways and the model
providers. It holds the providers' keys, meters usage and enforces spend caps."""
