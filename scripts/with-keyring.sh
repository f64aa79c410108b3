#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked GNOME Keyring (Secret Service),
# so tests use the real OS keyring backend headless. Usage: scripts/with-keyring.sh CMD [ARGS...]
# The keyring password only protects this throw-away test keyring.
set -eu
if [ -z "${KIYEOVO_IN_KEYRING_SESSION:-}" ]; then
  export KIYEOVO_IN_KEYRING_SESSION=1
  exec dbus-run-session -- "$0" "$@"
fi
# Private data and runtime dirs keep the throw-away keyring (its files and its control socket)
# away from the user's own keyring and from any other test session.
export XDG_DATA_HOME="${KIYEOVO_TEST_HOME:-$(mktemp -d)}"
XDG_RUNTIME_DIR="$(mktemp -d)"
export XDG_RUNTIME_DIR
unset GNOME_KEYRING_CONTROL
# Should D-Bus ever start a keyring daemon itself (after ours exited), it must use these
# directories too, not the session's defaults (where it finds no keyring of ours at all).
dbus-update-activation-environment XDG_DATA_HOME XDG_RUNTIME_DIR >/dev/null 2>&1 || true
printf 'kiyeovo-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
# Wait (bounded) until our daemon owns the Secret Service name: a client asking before that makes
# D-Bus start a second daemon, seen on a loaded machine as "no result found".
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then echo "with-keyring: the test keyring did not start" >&2; exit 1; fi
  sleep 0.1
done
exec "$@"
