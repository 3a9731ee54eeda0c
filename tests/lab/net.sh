#!/usr/bin/env bash
# homeline lab: the brief's reference network built from Linux network namespaces, veth pairs
# and iptables (BRIEF.md "The network it lives in"). Needs root, iproute2 and iptables.
#
#   home LAN 10.0.0.0/24            hl-homer              hl-inet ("the Internet")         hl-officer                office LAN 192.168.1.0/24
#   hl-home  phone 10.0.0.20 ---- 10.0.0.1 | 198.51.100.20 --+-- br-a 198.51.100.1/24     203.0.113.10 | 192.168.1.1 --+-- hl-office      homeline 192.168.1.10
#   hl-home2 phone 10.0.1.20 ---- 10.0.1.1 | 198.51.100.21 --+   STUN 198.51.100.10:3478   (MASQUERADE + the rules  +-- hl-officephone phone    192.168.1.20
#                 (hl-homer2)                                    br-b 203.0.113.1/24 ----   `homeline router-rules` prints)
#                                                                (STUN's RFC 5780 second address 198.51.100.11;
#                                                                 `homeline stun-server` 198.51.100.12, second 198.51.100.13)
#
# Usage as a script (or `source` it and call the functions):
#   tests/lab/net.sh up [NAT]          build everything (NAT of both home routers: prc | full | symmetric; default prc)
#   tests/lab/net.sh nat ROUTER NAT    switch hl-homer or hl-homer2 to another NAT type
#   tests/lab/net.sh forward HOMELINE CONFIG   load `HOMELINE --config CONFIG router-rules ... --format iptables` into hl-officer
#   tests/lab/net.sh office-nat NAT    the office router's NAT toward homeline (see lab_office_nat; default prc)
#   tests/lab/net.sh down              remove every namespace of the lab (also the stale ones of a killed run)
#   tests/lab/net.sh check             exit 0 when namespaces can be created here (root, ip netns, iptables)
#
# NAT types (Linux MASQUERADE keeps the source port and maps endpoint-independently):
#   prc        plain MASQUERADE: port-restricted cone (only the address:port a packet went to may answer)
#   full       full-cone approximation: MASQUERADE, and every new inbound UDP packet on the WAN is DNATed
#              to the phone on the same port
#   symmetric  MASQUERADE --random-fully: a new random public port per destination
#
# Nothing outside the namespaces is addressed or changed: every link is created directly inside
# its namespace (`ip link add ... netns`), no host interface, route or rule is touched.
set -euo pipefail

LAB_NS="hl-home hl-homer hl-home2 hl-homer2 hl-inet hl-officer hl-office hl-officephone"
# The office router's WAN interface (named in the router-rules script).
LAB_OFFICE_WAN=wan0

lab_ns() { ip netns exec "$@"; }

# ip link add A netns NS_A type veth peer name B netns NS_B
lab_veth() { ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"; }

lab_check() {
    [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
    command -v ip >/dev/null || { echo "no ip (iproute2)"; return 1; }
    command -v iptables >/dev/null || { echo "no iptables"; return 1; }
    local probe="hl-probe-$$"
    ip netns add "$probe" 2>/dev/null || { echo "cannot create network namespaces (ip netns add)"; return 1; }
    local ok=0
    ip netns exec "$probe" iptables -t nat -L >/dev/null 2>&1 || ok=1
    ip netns del "$probe"
    [ $ok = 0 ] || { echo "iptables nat table unusable in a namespace"; return 1; }
}

lab_down() {
    local n pids
    for n in $LAB_NS; do
        if [ -e "/run/netns/$n" ]; then
            # processes still inside (baresip, homeline, turnserver of a killed run)
            pids=$(ip netns pids "$n" 2>/dev/null || true)
            [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
            ip netns del "$n" 2>/dev/null || true
        fi
    done
}

# lab_nat ROUTER prc|full|symmetric  (ROUTER: hl-homer or hl-homer2)
lab_nat() {
    local r=$1 kind=$2 phone
    case $r in
        hl-homer) phone=10.0.0.20 ;;
        hl-homer2) phone=10.0.1.20 ;;
        *) echo "lab_nat: unknown router $r" >&2; return 2 ;;
    esac
    lab_ns "$r" iptables -t nat -F
    lab_ns "$r" iptables -F FORWARD
    # A home router: LAN to Internet allowed, Internet to LAN only for existing flows.
    lab_ns "$r" iptables -P FORWARD DROP
    lab_ns "$r" iptables -A FORWARD -i lan0 -o wan0 -j ACCEPT
    lab_ns "$r" iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    case $kind in
        prc) lab_ns "$r" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE ;;
        symmetric) lab_ns "$r" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE --random-fully ;;
        full)
            lab_ns "$r" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE
            lab_ns "$r" iptables -t nat -A PREROUTING -i wan0 -p udp -j DNAT --to-destination "$phone"
            lab_ns "$r" iptables -A FORWARD -i wan0 -p udp -d "$phone" -j ACCEPT
            ;;
        *) echo "lab_nat: unknown NAT type $kind (prc, full, symmetric)" >&2; return 2 ;;
    esac
    # Conntrack entries made under the previous rules would keep their old translation.
    lab_ns "$r" sh -c 'echo f > /proc/net/nf_conntrack' 2>/dev/null || true
}

# Bridged frames must not go through this namespace's iptables (br_netfilter, when the host
# has it loaded, sets bridge-nf-call-iptables=1 in every new namespace): a bridge is a switch here.
lab_no_bridge_nf() {
    [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] ||
        lab_ns "$1" sysctl -q -w net.bridge.bridge-nf-call-iptables=0
}

lab_home() { # lab_home HOME ROUTER LAN_PREFIX(10.0.0) WAN_IP
    local h=$1 r=$2 p=$3 wan=$4
    lab_veth "$h" eth0 "$r" lan0
    lab_veth "$r" wan0 hl-inet "p-$r"
    lab_ns hl-inet ip link set "p-$r" master br-a up
    lab_ns "$h" ip addr add "$p.20/24" dev eth0
    lab_ns "$h" ip link set eth0 up
    lab_ns "$h" ip route add default via "$p.1"
    lab_ns "$r" ip addr add "$p.1/24" dev lan0
    lab_ns "$r" ip addr add "$wan/24" dev wan0
    lab_ns "$r" ip link set lan0 up
    lab_ns "$r" ip link set wan0 up
    lab_ns "$r" ip route add default via 198.51.100.1
    lab_ns "$r" sysctl -q -w net.ipv4.ip_forward=1
}

lab_up() {
    local nat=${1:-prc} n
    lab_down
    for n in $LAB_NS; do
        ip netns add "$n"
        lab_ns "$n" ip link set lo up
    done
    # The Internet: one router, two bridged segments.
    lab_ns hl-inet ip link add br-a type bridge
    lab_ns hl-inet ip link add br-b type bridge
    lab_ns hl-inet ip addr add 198.51.100.1/24 dev br-a
    lab_ns hl-inet ip addr add 198.51.100.10/24 dev br-a # the STUN server's address
    lab_ns hl-inet ip addr add 198.51.100.11/24 dev br-a # its second address (RFC 5780)
    lab_ns hl-inet ip addr add 203.0.113.1/24 dev br-b
    lab_ns hl-inet ip link set br-a up
    lab_ns hl-inet ip link set br-b up
    lab_ns hl-inet sysctl -q -w net.ipv4.ip_forward=1
    lab_no_bridge_nf hl-inet

    lab_home hl-home hl-homer 10.0.0 198.51.100.20
    lab_home hl-home2 hl-homer2 10.0.1 198.51.100.21
    lab_nat hl-homer "$nat"
    lab_nat hl-homer2 "$nat"

    # The office router and its LAN (a bridge joining homeline and the office phone).
    lab_veth hl-officer "$LAB_OFFICE_WAN" hl-inet p-officer
    lab_ns hl-inet ip link set p-officer master br-b up
    lab_ns hl-officer ip addr add 203.0.113.10/24 dev "$LAB_OFFICE_WAN"
    lab_ns hl-officer ip link set "$LAB_OFFICE_WAN" up
    lab_ns hl-officer ip route add default via 203.0.113.1
    lab_ns hl-officer ip link add br-lan type bridge
    lab_ns hl-officer ip addr add 192.168.1.1/24 dev br-lan
    lab_ns hl-officer ip link set br-lan up
    lab_veth hl-office eth0 hl-officer p-pbx
    lab_veth hl-officephone eth0 hl-officer p-phone
    for n in p-pbx p-phone; do lab_ns hl-officer ip link set "$n" master br-lan up; done
    lab_ns hl-office ip addr add 192.168.1.10/24 dev eth0
    lab_ns hl-officephone ip addr add 192.168.1.20/24 dev eth0
    for n in hl-office hl-officephone; do
        lab_ns "$n" ip link set eth0 up
        lab_ns "$n" ip route add default via 192.168.1.1
    done
    lab_ns hl-officer sysctl -q -w net.ipv4.ip_forward=1
    lab_no_bridge_nf hl-officer
    # Outbound NAT; inbound only for existing flows and what the port forwards accept. The NAT
    # behaviour lives in chains of its own (lab_office_nat replaces their rules).
    local t c
    for t in nat:hl-snat nat:hl-dnat filter:hl-out filter:hl-in mangle:hl-sent; do
        lab_ns hl-officer iptables -t "${t%%:*}" -N "${t#*:}"
    done
    lab_ns hl-officer iptables -t nat -A POSTROUTING -o "$LAB_OFFICE_WAN" -j hl-snat
    lab_ns hl-officer iptables -t mangle -A POSTROUTING -o "$LAB_OFFICE_WAN" -j hl-sent
    lab_ns hl-officer iptables -P FORWARD DROP
    lab_ns hl-officer iptables -A FORWARD -i br-lan -o "$LAB_OFFICE_WAN" -j hl-out
    lab_ns hl-officer iptables -A FORWARD -i br-lan -o "$LAB_OFFICE_WAN" -j ACCEPT
    lab_ns hl-officer iptables -A FORWARD -i br-lan -o br-lan -j ACCEPT
    lab_ns hl-officer iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    lab_ns hl-officer iptables -A FORWARD -i "$LAB_OFFICE_WAN" -j hl-in
    lab_office_nat prc
    # homeline's own STUN server (`homeline stun-server`, RFC 5780) listens here, beside coturn.
    for c in 198.51.100.12 198.51.100.13; do lab_ns hl-inet ip addr add "$c/24" dev br-a; done
}

# lab_office_nat prc|restricted|full|symmetric|outfilter|blocked: the office router's NAT
# behaviour toward homeline (192.168.1.10). Every variant keeps the port forwards of
# `lab_forward`, which match first. Linux's MASQUERADE keeps the source port when it can, so a
# socket gets one public port whatever the destination (endpoint-independent mapping, RFC
# 4787) unless --random-fully asks for a new port per connection; its filtering comes from
# conntrack: only the address and port a packet went to may answer. The variants:
#   prc         MASQUERADE: port-restricted cone (endpoint-independent mapping, address- and
#               port-dependent filtering)
#   restricted  MASQUERADE, and a new inbound UDP flow is forwarded to homeline when homeline
#               has sent to its source IP before (xt_recent remembers every destination IP):
#               restricted cone (address-dependent filtering). The memory is per host, not per
#               socket: the same for a router with one host behind it.
#   full        MASQUERADE, and every new inbound UDP flow is forwarded to homeline on the same
#               port: full cone for homeline, what a router's "exposed host" setting with a
#               port-keeping NAT gives. Linux has no per-mapping full cone in the mainline
#               kernel, so with more hosts behind it this would not be one.
#   symmetric   MASQUERADE --random-fully: a new random public port per destination
#   outfilter   prc, and outbound UDP to 198.51.100.13 (the STUN server's second address)
#               dropped: an outbound filter that a NAT test cannot tell from a symmetric NAT
#   blocked     prc, and outbound UDP to the STUN ports dropped: UDP blocked
lab_office_nat() {
    local kind=$1 r=hl-officer pbx=192.168.1.10 t
    for t in nat:hl-snat nat:hl-dnat filter:hl-out filter:hl-in mangle:hl-sent; do
        lab_ns "$r" iptables -t "${t%%:*}" -F "${t#*:}"
    done
    # hl-dnat last in PREROUTING: the port forwards (appended later by lab_forward) come first.
    lab_ns "$r" iptables -t nat -D PREROUTING -i "$LAB_OFFICE_WAN" -j hl-dnat 2>/dev/null || true
    lab_ns "$r" iptables -t nat -A PREROUTING -i "$LAB_OFFICE_WAN" -j hl-dnat
    case $kind in
        prc | outfilter | blocked | restricted | full)
            lab_ns "$r" iptables -t nat -A hl-snat -j MASQUERADE ;;
        symmetric) lab_ns "$r" iptables -t nat -A hl-snat -j MASQUERADE --random-fully ;;
        *) echo "lab_office_nat: unknown NAT type $kind" >&2; return 2 ;;
    esac
    case $kind in
        restricted)
            lab_ns "$r" iptables -t mangle -A hl-sent -s "$pbx" -m recent --name hl-sent --rdest --set
            lab_ns "$r" iptables -t nat -A hl-dnat -p udp -m recent --name hl-sent --rsource --rcheck \
                -j DNAT --to-destination "$pbx"
            lab_ns "$r" iptables -A hl-in -p udp -d "$pbx" -m conntrack --ctstate DNAT \
                -m recent --name hl-sent --rsource --rcheck -j ACCEPT
            ;;
        full)
            lab_ns "$r" iptables -t nat -A hl-dnat -p udp -j DNAT --to-destination "$pbx"
            lab_ns "$r" iptables -A hl-in -p udp -d "$pbx" -m conntrack --ctstate DNAT -j ACCEPT
            ;;
        outfilter) lab_ns "$r" iptables -A hl-out -p udp -d 198.51.100.13 -j DROP ;;
        blocked) lab_ns "$r" iptables -A hl-out -p udp --dport 3478:3479 -j DROP ;;
    esac
}

# lab_forward HOMELINE_BINARY CONFIG: the port forwards exactly as homeline prints them.
lab_forward() {
    local bin=$1 config=$2 script
    script=$("$bin" --data /nonexistent-homeline-lab --config "$config" router-rules \
        --lan-ip 192.168.1.10 --wan-interface "$LAB_OFFICE_WAN" --format iptables)
    printf '%s\n' "$script" | lab_ns hl-officer sh -e
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    cmd=${1:-}
    shift || true
    case $cmd in
        up) lab_up "$@" ;;
        down) lab_down ;;
        nat) lab_nat "$@" ;;
        forward) lab_forward "$@" ;;
        office-nat) lab_office_nat "$@" ;;
        check) lab_check ;;
        *) sed -n '2,27p' "$0"; exit 2 ;;
    esac
fi
