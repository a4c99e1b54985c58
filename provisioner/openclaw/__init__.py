"""OpenClaw itself: installing the pinned release, and building each gateway's config and environment."""
