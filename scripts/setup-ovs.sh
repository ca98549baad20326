#!/bin/sh
# Makes Open vSwitch usable on this host, idempotently: installs openvswitch-switch when
# ovs-vsctl is missing, and starts ovsdb-server + ovs-vswitchd when they are not both running.
# There is no systemd here, so ovs-ctl starts them directly. The kernel has no openvswitch
# module: ovs-ctl notes that and carries on, and bridges must use datapath_type=netdev (the
# userspace datapath inside ovs-vswitchd, which is why vswitchd is still needed).
set -eu

ctl=/usr/share/openvswitch/scripts/ovs-ctl

if ! command -v ovs-vsctl >/dev/null 2>&1 || [ ! -x "$ctl" ]; then
  echo "setup-ovs: installing openvswitch-switch"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q openvswitch-switch >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q openvswitch-switch >/dev/null
  }
fi

if "$ctl" status >/dev/null 2>&1 && ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  exit 0
fi

echo "setup-ovs: starting Open vSwitch"
# --system-id=random: there is no /etc/openvswitch/system-id.conf on a fresh host;
# --no-mlockall: locking all of vswitchd's memory is refused in some containers and is not
# needed for tests.
"$ctl" start --system-id=random --no-mlockall >/dev/null
ovs-vsctl --timeout=10 show >/dev/null
echo "setup-ovs: Open vSwitch $(ovs-vsctl --version | head -n 1 | awk '{print $NF}') is running"
