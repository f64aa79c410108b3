#!/usr/bin/env bash
# Starts a local headless bootstrap node and opens one Kiyeovo window per profile against it.
#   scripts/run.sh                 one window, profile "default"
#   scripts/run.sh alice bob carol a one-machine demo: three users side by side
# Set KIYEOVO_BOOTSTRAP to join an existing network instead of starting a local node.
# Everything stops when the last window is closed.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
profiles=("$@")
[ ${#profiles[@]} -eq 0 ] && profiles=(default)

node_pid=""
pids=()
cleanup() {
  for pid in "${pids[@]}" $node_pid; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

extra=()
if [ -z "${KIYEOVO_BOOTSTRAP:-}" ]; then
  data="${XDG_DATA_HOME:-$HOME/.local/share}/kiyeovo/local-bootstrap"
  mkdir -p "$data"
  coproc NODE { exec "$target/debug/kiyeovo-node" --host 127.0.0.1 --port 0 --data-dir "$data" 2>"$data/node.log"; }
  node_pid=$NODE_PID
  read -r -t 30 addr <&"${NODE[0]}" || { echo "run: the local bootstrap node did not start; see $data/node.log" >&2; exit 1; }
  echo "run: local bootstrap node at $addr"
  export KIYEOVO_BOOTSTRAP="$addr"
  # On one machine the profiles store DHT records for each other.
  extra=(--dht-server)
fi

for p in "${profiles[@]}"; do
  echo "run: opening profile $p"
  "$target/debug/kiyeovo-desktop" --profile "$p" "${extra[@]}" &
  pids+=($!)
done
wait "${pids[@]}"
