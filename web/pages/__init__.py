"""The server-rendered pages: one module per area, each with its own routes."""
