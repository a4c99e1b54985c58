"""The platform's model gateway: the HTTP proxy between instances' OpenClaw gateways and the
model providers. It holds the providers' keys, meters usage and enforces spend caps.

A package of its own, beside `billing/`, because it is neither the provisioner's (which only
gives each instance a route and a credential, provisioner.model_access) nor the web app's
(which the world reaches; this listens apart, for instances only), and both front ends read
what it records. It uses `db` and the provisioner's providers table, nothing above them.
"""
