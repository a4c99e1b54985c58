"""Accounts: users, passwords, API and session tokens, one-time login links, invites and the
access policy. Used by both the bot and the web app, so it belongs to neither."""
