#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests, which Playwright
# drives there (never `playwright install`: no browser download). Safe to run again: an installed
# Chromium is left as it is. Where it cannot install (not root, no apt, the install fails), it
# says so and exits 1; the browser tests then skip -- or fail under CI=true, where nothing may skip.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure-chromium: $CHROMIUM is missing and this script can only install it as root on Debian" >&2
    echo "ensure-chromium: (apt-get install chromium); until then the browser tests skip (and fail under CI=true)" >&2
    exit 1
fi
echo "installing Chromium from Debian's packages"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Quiet unless it fails: apt's and debconf's chatter goes to the log, shown when the install fails.
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "ensure-chromium: apt-get install chromium failed (the reason is above); the browser tests skip" >&2
    echo "ensure-chromium: (and fail under CI=true)" >&2
    exit 1
fi
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
echo "$("$CHROMIUM" --version 2>/dev/null) installed"
