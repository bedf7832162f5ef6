#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# install-deps.sh - check for the Debian packages openvdi needs to build and
# test, and install the missing ones.
#
#   tools/install-deps.sh          (also: make deps)
#
# As root: apt-get update, then apt-get install -y of what is missing
# (non-interactive).  As another user: prints the exact apt-get line to run
# and exits 1.  Exit 0 when everything is (or now is) installed.
#
#   gcc make          the C11 build
#   g++               libsqlvdi.so (C++ SDK face) and its tests
#   libsqlite3-dev    vdisql's databases (-lsqlite3)
#   libzstd-dev       backup compression (-lzstd)
#   libjansson-dev    vdi reads its backup manifests with jansson (-ljansson)
#   sqlite3           the CLI used by the demo and the tests' checks
#   pkg-config        finding the libraries
#   clang             fuzzers (libFuzzer)
#   clang-format      the formatting check of make check
#   gnuplot-nox       the benchmark chart
#   util-linux        setpriv (tests that drop privileges)
#   freetds-bin       tsql, a TDS client the TDS endpoint's tests run
#   python3-pymssql   pymssql, another (Debian's /usr/bin/python3)
#   python3-pyodbc tdsodbc unixodbc
#                     pyodbc with the FreeTDS ODBC driver, a third
#   libssl-dev        TLS of the TDS endpoint and the logins' PBKDF2
#                     hashes (-lssl -lcrypto)
#   openssl           the CLI the TLS tests make their certificates with
#   libcurl4-openssl-dev libxml2-dev libsodium-dev
#                     vdi's S3 client (HTTP, SigV4) and its answers, and
#                     encrypted backups (-lcurl -lxml2 -lsodium)
#   ceph-mon ceph-osd radosgw ceph-common curl
#                     the real S3 store of the tests: a one-node Ceph with
#                     its RADOS Gateway (tools/s3-test-server.sh)
#   awscli            aws s3 cp, the peer of `make bench` section s3
set -eu

PACKAGES="gcc make g++ libsqlite3-dev libzstd-dev libjansson-dev sqlite3 \
pkg-config clang \
clang-format gnuplot-nox util-linux freetds-bin python3-pymssql \
python3-pyodbc tdsodbc unixodbc libssl-dev openssl libcurl4-openssl-dev \
libxml2-dev libsodium-dev ceph-mon ceph-osd radosgw ceph-common curl awscli"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: this is not a Debian-like system (no dpkg-query)." >&2
  echo "install-deps: install the equivalents of: $PACKAGES" >&2
  exit 1
fi

missing=""
for p in $PACKAGES; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done

if [ -z "$missing" ]; then
  echo "install-deps: all build and test packages are installed."
  exit 0
fi

echo "install-deps: missing:$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root:" >&2
  echo "  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # the list is meant to split into words
apt-get install -y --no-install-recommends $missing
echo "install-deps: installed:$missing"
