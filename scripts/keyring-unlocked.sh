#!/bin/sh
# Started by the test session's D-Bus (see with-keyring.sh) when no keyring daemon is running:
# the throw-away test keyring, unlocked with its test password.
printf 'kiyeovo-test' | exec gnome-keyring-daemon --foreground --replace --unlock --components=secrets >/dev/null
