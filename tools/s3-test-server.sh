#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# s3-test-server.sh - a real S3 store for the tests: a one-node Ceph cluster
# (ceph-mon, one ceph-osd on memstore, radosgw, and a second radosgw that
# also answers STS) on loopback, in a directory of its own, with one user
# and one bucket.
#
#   tools/s3-test-server.sh start   start it (or find it running); prints the
#                                   environment, as `env` does
#   tools/s3-test-server.sh env     the environment of the running store; if
#                                   none runs, starts one first
#   tools/s3-test-server.sh stop    stop the daemons and remove the directory
#   tools/s3-test-server.sh status  exit 0 if it answers, 1 if not
#   tools/s3-test-server.sh session temporary credentials of the test user
#                                   (STS GetSessionToken), as shell
#
# The environment printed is shell (`eval "$(tools/s3-test-server.sh env)"`):
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL and
# VDI_S3_TEST_BUCKET (a bucket made for the tests).
#
# Exit status 3 (and a line on stderr starting "s3-test-server: lacks") when
# this machine lacks Ceph (tools/install-deps.sh installs it as root); the
# tests then skip.  Any other failure exits 1 with the daemons' log tail.
#
# $VDI_S3_TEST_DIR is the directory (default: build/s3-test of the
# repository); the ports are free ones picked at start and kept in it, so
# several worktrees can each run their own.  The daemons run as the calling
# user, authentication inside the cluster is off (loopback only), the OSD
# keeps its objects in memory (memstore, at most 2 GiB, or
# $VDI_S3_TEST_MEMSTORE_BYTES: deleted objects are freed only by the
# gateway's garbage collection, hours later) and no ceph-mgr is
# started: radosgw does not need one.
set -u
here=$(cd "$(dirname "$0")" && pwd)
DIR=${VDI_S3_TEST_DIR:-$here/../build/s3-test}
mkdir -p "$DIR" 2>/dev/null
DIR=$(cd "$DIR" && pwd)
CONF=$DIR/ceph.conf
export CEPH_CONF=$CONF

lacks() {
  local p
  for p in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool \
    ceph curl; do
    if ! command -v "$p" >/dev/null 2>&1; then
      echo "s3-test-server: lacks $p (tools/install-deps.sh as root installs" \
        "ceph-mon ceph-osd radosgw ceph-common curl)" >&2
      return 0
    fi
  done
  return 1
}

free_port() { # a TCP port nobody listens on, from a random start
  local p=$((20000 + RANDOM % 20000)) i
  for i in $(seq 1 200); do
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"
      return 0
    fi
    p=$((p + 1))
  done
  return 1
}

print_env() {
  cat "$DIR/env"
}

answers() {
  [ -f "$DIR/env" ] || return 1
  local url
  url=$(sed -n "s/^export AWS_ENDPOINT_URL='\(.*\)'$/\1/p" "$DIR/env")
  [ -n "$url" ] && curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null
}

fail() {
  echo "s3-test-server: $*" >&2
  local f
  for f in "$DIR"/log/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
  stop_daemons
  exit 1
}

stop_daemons() {
  local f pid
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done
  # (Memory only: nothing to flush; 2 s, then they are killed.)
  for i in $(seq 1 20); do
    local alive=0
    for f in "$DIR"/run/*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f" 2>/dev/null)
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  done
  true
}

start_rgw() { # NAME PORT: start the gateway of ceph.conf section NAME, wait
  local i
  radosgw -c "$CONF" -n "$1" >>"$DIR/log/start.log" 2>&1 9>&- ||
    fail "radosgw -n $1 did not start"
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$2/" 2>/dev/null &&
      return 0
    sleep 0.2
  done
  fail "radosgw -n $1 does not answer on 127.0.0.1:$2"
}

start() {
  local t0 mon_port rgw_port sts_port fsid key secret
  t0=$(date +%s%N)
  stop_daemons
  rm -rf "${DIR:?}"/{mon.a,osd.0,run,log,rgw,rgw-sts,env,ceph.conf,keyring,monmap}
  mkdir -p "$DIR"/{run,log,mon.a,osd.0,rgw,rgw-sts}
  mon_port=$(free_port) || fail "no free port"
  rgw_port=$(free_port) || fail "no free port"
  [ "$rgw_port" = "$mon_port" ] && rgw_port=$((rgw_port + 1))
  sts_port=$(free_port) || fail "no free port"
  while [ "$sts_port" = "$mon_port" ] || [ "$sts_port" = "$rgw_port" ]; do
    sts_port=$((sts_port + 1))
  done
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = [v1:127.0.0.1:$mon_port]
mon initial members = a
ms bind msgr2 = false
ms bind ipv6 = false
ms bind ipv4 = true
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
[mon]
mon data = $DIR/mon.\$id
mon cluster log file = $DIR/log/cluster.log
[osd]
osd data = $DIR/osd.\$id
osd objectstore = memstore
memstore device bytes = ${VDI_S3_TEST_MEMSTORE_BYTES:-2147483648}
osd max object name len = 460
osd max object namespace len = 64
osd op num threads per shard = 1
osd op num shards = 2
# The OSD's own early mon commands (crush location, device class) race
# its first monmap on a loaded machine ("wrong fsid"): placed by hand.
osd crush update on start = false
osd class update on start = false
[client.rgw]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = localhost
rgw thread pool size = 32
log file = $DIR/log/rgw.log
# A second gateway on the same cluster with STS (GetSessionToken):
# temporary credentials with a session token, as AWS_SESSION_TOKEN carries
# them; the key encrypts the tokens.  Apart, because with STS on a gateway
# answers a wrong secret AccessDenied, not SignatureDoesNotMatch, and the
# tests of wrong credentials want the store's precise answer.
[client.rgw.sts]
rgw data = $DIR/rgw-sts
rgw frontends = beast endpoint=127.0.0.1:$sts_port
rgw dns name = localhost
rgw thread pool size = 8
rgw s3 auth use sts = true
rgw sts key = $(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
log file = $DIR/log/rgw-sts.log
EOF
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. \
    --cap mon 'allow *' >/dev/null 2>&1 || fail "ceph-authtool failed"
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" \
    "$DIR/monmap" >/dev/null 2>&1 || fail "monmaptool failed"
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" \
    --keyring "$DIR/keyring" >"$DIR/log/mkfs.log" 2>&1 ||
    fail "ceph-mon --mkfs failed"
  ceph-mon -c "$CONF" -i a >>"$DIR/log/start.log" 2>&1 9>&- ||
    fail "ceph-mon did not start"
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  timeout 60 ceph -c "$CONF" osd new "$osd_uuid" >/dev/null 2>>"$DIR/log/start.log" ||
    fail "ceph osd new failed"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >>"$DIR/log/mkfs.log" 2>&1 || fail "ceph-osd --mkfs failed"
  timeout 60 ceph -c "$CONF" osd crush add osd.0 1.0 root=default \
    >/dev/null 2>>"$DIR/log/start.log" || fail "ceph osd crush add failed"
  ceph-osd -c "$CONF" -i 0 >>"$DIR/log/start.log" 2>&1 9>&- ||
    fail "ceph-osd did not start"
  local i up=0
  for i in $(seq 1 150); do
    if timeout 5 ceph -c "$CONF" osd stat 2>/dev/null | grep -q '1 up'; then
      up=1
      break
    fi
    sleep 0.2
  done
  [ $up -eq 1 ] || fail "the OSD did not come up"
  start_rgw client.rgw "$rgw_port"
  start_rgw client.rgw.sts "$sts_port"
  key=$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F |
    head -c 20)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
  timeout 60 radosgw-admin -c "$CONF" -n client.rgw user create --uid=vditest \
    --display-name=vditest --access-key="$key" --secret-key="$secret" \
    >"$DIR/log/user.log" 2>&1 || fail "radosgw-admin user create failed"
  local url=http://127.0.0.1:$rgw_port
  # One bucket for the tests (curl signs it, as vdi's client does).
  up=0
  for i in $(seq 1 50); do
    if curl -fsS -o /dev/null -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --user "$key:$secret" "$url/vdi-test" 2>>"$DIR/log/start.log"; then
      up=1
      break
    fi
    sleep 0.2
  done
  [ $up -eq 1 ] || fail "could not create the test bucket"
  # The user may ask for temporary credentials (STS GetSessionToken): a
  # user policy, put through the IAM API (which the caps open).
  timeout 60 radosgw-admin -c "$CONF" -n client.rgw caps add --uid=vditest \
    --caps="user-policy=*" >>"$DIR/log/user.log" 2>&1 ||
    fail "radosgw-admin caps add failed"
  curl -fsS -o /dev/null --aws-sigv4 "aws:amz:us-east-1:iam" \
    --user "$key:$secret" --data-urlencode "Action=PutUserPolicy" \
    --data-urlencode "Version=2010-05-08" --data-urlencode "UserName=vditest" \
    --data-urlencode "PolicyName=session" --data-urlencode \
    'PolicyDocument={"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetSessionToken"],"Resource":"*"}]}' \
    "$url/" 2>>"$DIR/log/start.log" || fail "could not put the user's policy"
  cat >"$DIR/env.tmp" <<EOF
export AWS_ACCESS_KEY_ID='$key'
export AWS_SECRET_ACCESS_KEY='$secret'
export AWS_REGION='us-east-1'
export AWS_ENDPOINT_URL='$url'
export VDI_S3_TEST_BUCKET='vdi-test'
export VDI_S3_TEST_STS_URL='http://127.0.0.1:$sts_port'
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  local ms=$((($(date +%s%N) - t0) / 1000000))
  echo "s3-test-server: up in $((ms / 1000)).$((ms % 1000 / 100)) s at $url," \
    "$(rss_kb) KiB resident ($DIR)" >&2
}

rss_kb() { # resident memory of the daemons, in KiB
  local f pid total=0 r
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null)
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    total=$((total + ${r:-0}))
  done
  echo "$total"
}

cmd=${1:-}
case "$cmd" in
  start | env)
    if lacks; then exit 3; fi
    # One starter at a time (tests running in parallel may all ask).
    # (The daemons must not inherit the lock: they are started with 9>&-.)
    exec 9>"$DIR/.lock"
    flock -w 150 9 || { echo "s3-test-server: another start hangs" >&2; exit 1; }
    # A second try when the first fails: on a loaded machine the OSD has
    # once come up with a null fsid ("wrong fsid" in log/osd.0.log).
    if ! answers; then
      if ! (start); then
        echo "s3-test-server: trying once more" >&2
        (start) || exit 1
      fi
    fi
    print_env
    ;;
  stop)
    exec 9>"$DIR/.lock"
    flock 9
    stop_daemons
    rm -rf "${DIR:?}"/{mon.a,osd.0,run,rgw,rgw-sts,env,ceph.conf,keyring,monmap}
    ;;
  status)
    answers
    ;;
  memory)
    echo "$(rss_kb) KiB resident (ceph-mon, ceph-osd, two radosgw)"
    ;;
  session)
    # Temporary credentials of the test user (STS GetSessionToken, 15
    # minutes), printed as `env` prints the user's own: the three
    # AWS_* credential variables, AWS_SESSION_TOKEN among them, and the
    # gateway that takes them (AWS_ENDPOINT_URL: the STS one).
    answers || { echo "s3-test-server: not running" >&2; exit 1; }
    # shellcheck disable=SC1091
    . "$DIR/env"
    echo "export AWS_ENDPOINT_URL='$VDI_S3_TEST_STS_URL'"
    curl -fsS --aws-sigv4 "aws:amz:$AWS_REGION:sts" \
      --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
      -d "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900" \
      "$VDI_S3_TEST_STS_URL/" | python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.stdin).getroot()
def text(name):
    return next(e.text for e in root.iter() if e.tag.split("}")[-1] == name)
for var, name in (("AWS_ACCESS_KEY_ID", "AccessKeyId"),
                  ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
                  ("AWS_SESSION_TOKEN", "SessionToken")):
    print("export %s=%s" % (var, chr(39) + text(name) + chr(39)))
'
    ;;
  reclaim)
    # Free what deleted objects still hold now, not after the gateway's
    # garbage collection comes round (hours): `make bench` deletes each
    # round's objects and reclaims, so that the in-memory store does not
    # fill up.
    timeout 120 radosgw-admin -c "$CONF" -n client.rgw gc process \
      --include-all >/dev/null 2>&1
    ;;
  *)
    echo "usage: $0 start|env|stop|status|memory|reclaim" >&2
    exit 2
    ;;
esac
