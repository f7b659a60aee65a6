#!/usr/bin/env bash
# lab-up.sh LAB_ID HOME_NAT REMOTE_NAT -- build homeport's NAT lab in network namespaces (needs root).
# LAB_ID is "<owner pid>-<4 hex digits>"; every namespace is named hp-<node>-<LAB_ID>, so two runs never
# collide and lab-down.sh --stale can tell a dead run's namespaces by their owner pid.
#
#   hp-home   10.10.0.2 --- hp-home-router   (LAN 10.10.0.1, WAN 198.51.100.2) ---+
#                                                                                 hp-wan: routes both uplinks;
#   hp-remote 10.20.0.2 --- hp-remote-router (LAN 10.20.0.1, WAN 192.0.2.2)    ---+  servers on lo: 203.0.113.10, .11
#
# Every interface is created inside a lab namespace (ip -n ... link add ... peer ... netns ...), so no
# interface ever exists in the root namespace: nothing in the lab can reach the outside world or be reached
# from it, and the root namespace's routing is never touched. NAT types: see lab-nat.sh.
set -euo pipefail
ID=${1:?usage: lab-up.sh LAB_ID HOME_NAT REMOTE_NAT}; HOME_NAT=${2:?HOME_NAT missing}; REMOTE_NAT=${3:?REMOTE_NAT missing}
[[ $ID =~ ^[0-9]+-[0-9a-f]{4}$ ]] || { echo "lab-up.sh: LAB_ID '$ID' must look like <pid>-<4 hex digits>" >&2; exit 2; }
D=$(cd "$(dirname "$0")" && pwd)
W=hp-wan-$ID; HR=hp-home-router-$ID; H=hp-home-$ID; RR=hp-remote-router-$ID; R=hp-remote-$ID
trap '"$D"/lab-down.sh "$ID"' ERR          # a half-built lab is removed again

for ns in $W $HR $H $RR $R; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
for ns in $W $HR $RR; do ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1; done

# the "internet": hp-wan routes between the two router uplinks and holds the servers' two public
# addresses (on lo, so no dummy driver is needed)
ip -n "$W" addr add 203.0.113.10/32 dev lo
ip -n "$W" addr add 203.0.113.11/32 dev lo

# uplink ROUTER_NS ROUTER_WAN_IP WAN_SIDE_IP WAN_IFNAME LAN_NS LAN_PREFIX
uplink() {
  local rns=$1 rwan=$2 wside=$3 wif=$4 lns=$5 lan=$6
  ip -n "$rns" link add wan0 type veth peer name "$wif" netns "$W"
  ip -n "$W" addr add "$wside/24" dev "$wif";   ip -n "$W" link set "$wif" up
  ip -n "$rns" addr add "$rwan/24" dev wan0;    ip -n "$rns" link set wan0 up
  ip -n "$rns" route add default via "$wside"
  ip -n "$W" route add "$lan.0/24" via "$rwan"   # the ISP routes the LAN to the router: only none/fw let it in
  ip -n "$rns" link add lan0 type veth peer name eth0 netns "$lns"
  ip -n "$rns" addr add "$lan.1/24" dev lan0;   ip -n "$rns" link set lan0 up
  ip -n "$lns" addr add "$lan.2/24" dev eth0;   ip -n "$lns" link set eth0 up
  ip -n "$lns" route add default via "$lan.1"
}
uplink "$HR" 198.51.100.2 198.51.100.1 to-home   "$H" 10.10.0
uplink "$RR" 192.0.2.2    192.0.2.1    to-remote "$R" 10.20.0

"$D"/lab-nat.sh "$HR" "$HOME_NAT" 0
"$D"/lab-nat.sh "$RR" "$REMOTE_NAT" 0
