"""OpenClaw itself: installing the pinned release, and rendering each gateway's config."""
