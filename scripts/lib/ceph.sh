#!/usr/bin/env bash
# One-node Ceph (mon, mgr, one memstore OSD, RGW) on 127.0.0.1 under DIR, for S3 tests.
# Usage: ceph.sh DIR  -> writes DIR/env (S3 endpoint and keys); stop: kill $(cat DIR/run/*.pid)
# CEPH_MEMSTORE_BYTES caps the memory-backed OSD (default 2 GiB; benchmarks raise it).
set -euo pipefail
dir=$(realpath -m "$1"); mkdir -p "$dir"/{mon,mgr,osd,run,log}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
mon_port=$(free_port); rgw_port=$(free_port)
fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/admin.keyring
run dir = $dir/run
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
# A test cluster: run on a nearly full disk too (the monitor stops below 5% free by default).
mon data avail crit = 0
mon data avail warn = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${CEPH_MEMSTORE_BYTES:-2147483648}
ms bind msgr2 = false
[mon.a]
mon data = $dir/mon
[mgr.x]
mgr data = $dir/mgr
[osd.0]
osd data = $dir/osd
keyring = $dir/osd/keyring
[client.rgw.a]
keyring = $dir/rgw.keyring
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
CONF
ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring" >/dev/null
monmaptool --create --addv a "[v1:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
ceph-mon -c "$conf" -i a
C="ceph -c $conf"
$C auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$dir/mgr/keyring"
ceph-mgr -c "$conf" -i x --keyring "$dir/mgr/keyring"
uuid=$(cat /proc/sys/kernel/random/uuid)
id=$($C osd new "$uuid")
ceph-authtool --create-keyring "$dir/osd/keyring" --gen-key -n osd.$id --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
$C auth add osd.$id -i "$dir/osd/keyring"
ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" 2>>"$dir/log/mkfs.log"
ceph-osd -c "$conf" -i "$id"
$C auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$dir/rgw.keyring"
mkdir -p "$dir/rgw"
radosgw -c "$conf" -n client.rgw.a
for i in $(seq 1 120); do curl -fsS "http://127.0.0.1:$rgw_port/" >/dev/null 2>&1 && break; sleep 0.5; done
radosgw-admin -c "$conf" user create --uid=ferry --display-name=ferry --access-key=FERRYTESTACCESS --secret-key=ferrytestsecret >/dev/null
cat > "$dir/env" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=FERRYTESTACCESS
AWS_SECRET_ACCESS_KEY=ferrytestsecret
CEPH_CONF=$conf
ENV
echo "$dir/env"
