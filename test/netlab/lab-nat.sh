#!/usr/bin/env bash
# lab-nat.sh ROUTER_NS TYPE [BOOT] -- (re)install the NAT personality of a lab router, flush its conntrack.
# TYPE  mapping                       filtering                    how
#  fc   endpoint-independent          endpoint-independent         masquerade + DNAT by the learned mappings
#  arc  endpoint-independent          address-dependent            same, DNAT only from contacted addresses
#  prc  endpoint-independent          address-and-port-dependent   plain masquerade
#  sym  address-and-port-dependent    address-and-port-dependent   masquerade fully-random
#  none no NAT                        none (routes everything)     no NAT rules, forwards unsolicited inbound too
#  fw   no NAT                        address-and-port-dependent   no NAT rules, stateful firewall: RFC 3489's
#                                                                  "Symmetric UDP Firewall"
# none and fw need hp-wan's route to the router's LAN (lab-up.sh sets it, lab-wan-address.sh follows it).
# Linux has no full-cone switch: fc and arc record each outbound mapping in an nftables dynamic map and DNAT
# inbound packets with it. Mappings are endpoint-independent because Linux reuses the mapping of a live
# conntrack entry from the same source (fully-random skips that).
# BOOT (default 0) picks the public port range: 20000-24999 for boot 0, 25000-29999 for boot 1, and so on.
# So the mapped port never equals the local one, and a "reboot" (re-running with BOOT+1) always changes it;
# a plain conntrack flush is no reboot.
# WAN_INPUT=drop (default) drops unsolicited WAN packets as real CPE does. accept is an adversarial mode that
# breaks hole punching: a probe that arrives first leaves a conntrack entry and the peer gets another port.
set -euo pipefail
NS=${1:?usage: lab-nat.sh ROUTER_NS TYPE [BOOT]}; TYPE=${2:?TYPE missing}; BOOT=${3:-0}
MAP_TIMEOUT=${MAP_TIMEOUT:-120s}; WAN_INPUT=${WAN_INPUT:-drop}
[[ $NS == hp-* ]] || { echo "lab-nat.sh: '$NS' is no lab namespace (hp-*)" >&2; exit 2; }
case $TYPE in fc|arc|prc|sym|none|fw) ;; *) echo "lab-nat.sh: unknown NAT type '$TYPE' (fc | arc | prc | sym | none | fw)" >&2; exit 2;; esac
[[ $BOOT =~ ^[0-9]+$ ]] || { echo "lab-nat.sh: BOOT '$BOOT' must be a number" >&2; exit 2; }
case $WAN_INPUT in drop|accept) ;; *) echo "lab-nat.sh: WAN_INPUT must be drop or accept" >&2; exit 2;; esac
PORT_LOW=$((20000 + (BOOT % 8) * 5000)); PORT_HIGH=$((PORT_LOW + 4999))
RANDOM_PORTS=""; [ "$TYPE" = sym ] && RANDOM_PORTS="fully-random"   # a new random port for every 5-tuple

source_nat() {
  case $TYPE in
    none|fw) ;;
    *) echo "    oifname \"wan0\" meta l4proto { tcp, udp } masquerade to :$PORT_LOW-$PORT_HIGH $RANDOM_PORTS"
       echo '    oifname "wan0" masquerade' ;;
  esac
}

# what gets from the WAN into the LAN: everything (none), replies (fw, prc, sym), replies and DNATed (fc, arc)
forward_filter() {
  if [ "$TYPE" = none ]; then return; fi
  echo '    iifname "wan0" ct state established,related accept'
  echo '    iifname "wan0" ct status dnat accept'
  echo '    iifname "wan0" drop'
}

inbound_dnat() {
  case $TYPE in
    fc) echo '    iifname "wan0" udp dport @mapped_udp dnat ip to udp dport map @mapped_udp'
        echo '    iifname "wan0" tcp dport @mapped_tcp dnat ip to tcp dport map @mapped_tcp' ;;
    arc) echo '    iifname "wan0" udp dport . ip saddr @contacted_udp dnat ip to udp dport map @mapped_udp'
         echo '    iifname "wan0" tcp dport . ip saddr @contacted_tcp dnat ip to tcp dport map @mapped_tcp' ;;
  esac
}

# the first two lines make the replacement atomic whether or not the table exists
ip netns exec "$NS" nft -f - <<RULES
table ip homeport-lab {}
delete table ip homeport-lab
table ip homeport-lab {
  # public (mapped) port -> inside address . port, learned from outbound flows (used by fc and arc)
  map mapped_udp { typeof udp dport : ip saddr . udp sport; flags dynamic,timeout; timeout $MAP_TIMEOUT; }
  map mapped_tcp { typeof tcp dport : ip saddr . tcp sport; flags dynamic,timeout; timeout $MAP_TIMEOUT; }
  # public port . remote address the inside endpoint has sent to (used by arc)
  set contacted_udp { typeof udp dport . ip daddr; flags dynamic,timeout; timeout $MAP_TIMEOUT; }
  set contacted_tcp { typeof tcp dport . ip daddr; flags dynamic,timeout; timeout $MAP_TIMEOUT; }

  chain pre { type nat hook prerouting priority dstnat; policy accept;
$(inbound_dnat)
  }
  chain post { type nat hook postrouting priority srcnat; policy accept;
$(source_nat)
  }
  # runs after srcnat, so 'ct reply proto-dst' is the public (mapped) port
  chain learn { type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan0" ct direction original meta l4proto udp update @mapped_udp { ct reply proto-dst : ct original ip saddr . ct original proto-src }
    oifname "wan0" ct direction original meta l4proto tcp update @mapped_tcp { ct reply proto-dst : ct original ip saddr . ct original proto-src }
    oifname "wan0" ct direction original meta l4proto udp update @contacted_udp { ct reply proto-dst . ip daddr }
    oifname "wan0" ct direction original meta l4proto tcp update @contacted_tcp { ct reply proto-dst . ip daddr }
  }
  # CPE-like firewall: nothing unsolicited reaches the router itself or the LAN
  chain wan_input { type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" $WAN_INPUT
  }
  chain wan_forward { type filter hook forward priority filter; policy accept;
$(forward_filter)
  }
}
RULES
ip netns exec "$NS" conntrack -F >/dev/null 2>&1 || { echo "lab-nat.sh: conntrack -F failed in $NS" >&2; exit 1; }
