"""Instance backups: each user's OpenClaw state archived by `openclaw backup create`, encrypted,
kept (locally under DATA_DIR, optionally in an S3-compatible bucket), restorable and downloadable.
Not the platform-wide `clawfleet backup` of the database and key ring."""
