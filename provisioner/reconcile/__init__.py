"""The reconciler: keeps every instance as the database says, whatever died (Kubernetes-style,
level-triggered: compare desired with observed, act on the difference, idempotently)."""
