"""The REST API (JSON). Errors: {"error": {"code", "message", "field"?}}."""
