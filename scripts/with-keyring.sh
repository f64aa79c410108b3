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
printf 'kiyeovo-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
exec "$@"
