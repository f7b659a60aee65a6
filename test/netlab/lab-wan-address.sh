#!/usr/bin/env bash
# lab-wan-address.sh ROUTER_NS ADDRESS -- give a lab router a new WAN address in its /24 (the ISP handing out
# another address after a reboot); the default route via the wan side is kept, and hp-wan's route to the
# router's LAN (which only the no-NAT types none and fw use) moves to the new address.
set -euo pipefail
NS=${1:?usage: lab-wan-address.sh ROUTER_NS ADDRESS}; ADDRESS=${2:?ADDRESS missing}
[[ $NS == hp-* ]] || { echo "lab-wan-address.sh: '$NS' is no lab namespace (hp-*)" >&2; exit 2; }
[[ $ADDRESS =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "lab-wan-address.sh: '$ADDRESS' is no IPv4 address" >&2; exit 2; }
GATEWAY=$(ip -n "$NS" route show default | awk '/^default via/ { print $3; exit }')
[ -n "$GATEWAY" ] || { echo "lab-wan-address.sh: $NS has no default route" >&2; exit 1; }
WAN_NS=hp-wan-${NS##*-router-}
OLD=$(ip -n "$NS" -4 -o addr show dev wan0 | awk '{ split($4, a, "/"); print a[1]; exit }')
LANS=$(ip -n "$WAN_NS" route show via "$OLD" | awk '{ print $1 }')
ip -n "$NS" addr flush dev wan0
ip -n "$NS" addr add "$ADDRESS/24" dev wan0
ip -n "$NS" route replace default via "$GATEWAY" dev wan0
for lan in $LANS; do ip -n "$WAN_NS" route replace "$lan" via "$ADDRESS"; done
