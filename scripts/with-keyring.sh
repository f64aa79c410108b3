#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked GNOME Keyring (Secret Service),
# so tests use the real OS keyring backend headless. Usage: scripts/with-keyring.sh CMD [ARGS...]
# The keyring password only protects this throw-away test keyring.
set -eu
if [ -z "${KIYEOVO_IN_KEYRING_SESSION:-}" ]; then
  export KIYEOVO_IN_KEYRING_SESSION=1
  # Private data and runtime dirs keep the throw-away keyring (its files and its control
  # socket) away from the user's own keyring and from any other test session. The data dir is
  # set before the session bus starts, which reads its service files from there first: should
  # the keyring daemon die (GNOME Keyring was seen to abort under many parallel clients), the
  # bus then starts ours, unlocked, instead of the system's, which comes up locked and fails
  # whatever test asks it next.
  export XDG_DATA_HOME="${KIYEOVO_TEST_HOME:-$(mktemp -d)}"
  mkdir -p "$XDG_DATA_HOME/dbus-1/services"
  for name in org.freedesktop.secrets org.gnome.keyring; do
    printf '[D-BUS Service]\nName=%s\nExec=%s/keyring-unlocked.sh\n' "$name" \
      "$(cd "$(dirname "$0")" && pwd)" >"$XDG_DATA_HOME/dbus-1/services/$name.service"
  done
  exec dbus-run-session -- "$0" "$@"
fi
XDG_RUNTIME_DIR="$(mktemp -d)"
export XDG_RUNTIME_DIR
unset GNOME_KEYRING_CONTROL
# Should D-Bus ever start a keyring daemon itself (after ours exited), it must use these
# directories too, not the session's defaults (where it finds no keyring of ours at all).
dbus-update-activation-environment XDG_DATA_HOME XDG_RUNTIME_DIR >/dev/null 2>&1 || true
# The daemon runs in the foreground under a small supervisor: GNOME Keyring was seen to exit
# under many parallel clients, and D-Bus then starts a new daemon on the next request — locked,
# which fails whatever test comes next. The supervisor puts an unlocked one back (replacing any
# locked one D-Bus started meanwhile) and logs each exit.
KEYRING_LOG="$XDG_RUNTIME_DIR/keyring.log"
(
  while :; do
    printf 'kiyeovo-test' | gnome-keyring-daemon --foreground --replace --unlock \
      --components=secrets >>"$KEYRING_LOG" 2>&1 || true
    [ -e "$XDG_RUNTIME_DIR/stop-keyring" ] && exit 0
    echo "with-keyring: the test keyring daemon exited; starting it again (log: $KEYRING_LOG)" >&2
    sleep 0.2
  done
) &
SUPERVISOR=$!
# Wait (bounded) until our daemon owns the Secret Service name: a client asking before that makes
# D-Bus start a second daemon, seen on a loaded machine as "no result found".
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then echo "with-keyring: the test keyring did not start" >&2; exit 1; fi
  sleep 0.1
done
status=0
"$@" || status=$?
touch "$XDG_RUNTIME_DIR/stop-keyring"
pkill -P "$SUPERVISOR" 2>/dev/null || true
wait "$SUPERVISOR" 2>/dev/null || true
exit "$status"
