#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the docker runtime's tests and the offline image build.
# Prints the engine's URL on stdout (e.g. unix:///run/clawfleet-docker.sock); everything else
# goes to stderr, so `url=$(scripts/ensure-docker.sh)` works. Safe to run again: a running engine
# is found and its URL printed at once. Where it cannot start one (not root, no apt), it says so
# and exits 1; the Docker tests then skip -- or fail under CI=true, where nothing may skip.
#
# Our own engine keeps to paths of its own, so it never disturbs a system Docker:
#   socket  /run/clawfleet-docker.sock      log      /var/log/clawfleet-dockerd.log
#   data    /var/lib/clawfleet-docker       pidfile  /run/clawfleet-docker.pid
# Stop it with: kill "$(cat /run/clawfleet-docker.pid)"; run this script again to restart it.
set -euo pipefail

SOCK=/run/clawfleet-docker.sock
OWN_URL=unix://$SOCK
DATA_ROOT=/var/lib/clawfleet-docker
EXEC_ROOT=/run/clawfleet-docker
PIDFILE=/run/clawfleet-docker.pid
LOG=/var/log/clawfleet-dockerd.log
LOCK=/run/clawfleet-docker.lock
WAIT_S=60

say() { echo "ensure-docker: $*" >&2; }
answers() { command -v docker >/dev/null && DOCKER_HOST=$1 timeout 10 docker version >/dev/null 2>&1; }
found() { say "Docker engine answers at $1"; echo "$1"; exit 0; }
# The first URL that answers: DOCKER_HOST when set, the system default, then our own engine.
find_engine() {
    local url
    for url in ${DOCKER_HOST:+"$DOCKER_HOST"} unix:///var/run/docker.sock "$OWN_URL"; do
        if answers "$url"; then found "$url"; fi
    done
}
own_pid_alive() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

find_engine
if [ -n "${DOCKER_HOST:-}" ]; then
    say "DOCKER_HOST=$DOCKER_HOST does not answer; looking for another engine"
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "no Docker engine answers, and this script can only install and start one as root on Debian."
    say "Start Docker yourself and set DOCKER_HOST (or CLAWFLEET_DOCKER_URL);"
    say "until then the Docker tests skip (and fail under CI=true)."
    exit 1
fi

# Two runs at once (make -j, two terminals) must not start two daemons on one data root.
exec 9>"$LOCK"
flock 9
find_engine  # the other run may have started it while we waited

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    say "installing docker.io from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    find_engine  # some machines start the packaged service on install
fi

daemon=""
if own_pid_alive; then
    daemon=$(cat "$PIDFILE")
    say "dockerd $daemon is running but does not answer yet; waiting"
else
    say "starting dockerd on $OWN_URL (data $DATA_ROOT, log $LOG)"
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
    # setsid: the daemon outlives this script and the make run that called it
    setsid dockerd --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" -H "$OWN_URL" \
        --pidfile "$PIDFILE" </dev/null >>"$LOG" 2>&1 9>&- &
    daemon=$!
fi
for _ in $(seq 1 "$WAIT_S"); do
    if answers "$OWN_URL"; then found "$OWN_URL"; fi
    kill -0 "$daemon" 2>/dev/null || break  # it exited: waiting longer will not help
    sleep 1
done
say "dockerd did not answer on $OWN_URL (waited up to ${WAIT_S} s); the end of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
