#!/usr/bin/env bash
# lab-down.sh LAB_ID | --stale | --all -- remove lab namespaces: kill the processes still inside them (by pid,
# via ip netns pids), then delete them; their veths die with them.
#   LAB_ID   one lab: the namespaces hp-<node>-LAB_ID
#   --stale  every lab whose owner process (the pid in LAB_ID) is gone: what crashed runs left behind
#   --all    every lab namespace, also those of runs still going: only when nothing else is testing
set -uo pipefail
TARGET=${1:?usage: lab-down.sh LAB_ID | --stale | --all}
LAB_NAMESPACE='^hp-[a-z-]+-([0-9]+)-[0-9a-f]{4}$'
case $TARGET in
  --stale|--all) ;;
  *) [[ $TARGET =~ ^[0-9]+-[0-9a-f]{4}$ ]] ||
       { echo "lab-down.sh: LAB_ID '$TARGET' must look like <pid>-<4 hex digits>" >&2; exit 2; } ;;
esac

targeted() {  # NAMESPACE -> success if TARGET covers it
  local name=$1
  [[ $name =~ $LAB_NAMESPACE ]] || return 1
  case $TARGET in
    --all) return 0 ;;
    --stale) ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null ;;
    *) [[ $name == *-"$TARGET" ]] ;;
  esac
}

doomed=()
for name in $(ip netns list | awk '{ print $1 }'); do
  if targeted "$name"; then doomed+=("$name"); fi
done
for ns in "${doomed[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; done
for ns in "${doomed[@]}"; do ip netns del "$ns" 2>/dev/null; done
true
