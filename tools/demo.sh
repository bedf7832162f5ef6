#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# demo.sh - the main job, end to end (run by `make demo`, BUILD = build dir):
#
#   1. create a sample SQLite database "sales" of realistic shape (~100 MB:
#      customers, orders, order_items, with indexes, text and numbers)
#   2. back it up with `vdi backup` through 4 virtual devices (vdisql is the
#      engine, in its own process, talking VDI to vdi)
#   3. list and verify the backup
#   4. restore it under another name, "sales_restored"
#   5. compare the two databases table by table (row counts and a SHA-256 of
#      every row in key order), side by side
#
# Exit 0 only if every step worked and both databases hold the same rows.
# Everything lives in demo/ at the top of the repository (ignored by git).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
VDI="$BUILD/vdi"
DEMO="$ROOT/demo"
INST="$DEMO/instance"
BK="$DEMO/backups"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

for prog in "$VDI" "$BUILD/vdisql"; do
  [ -x "$prog" ] || die "$prog is not built (run make first)"
done
command -v sqlite3 >/dev/null 2>&1 ||
  die "the sqlite3 command is missing (tools/install-deps.sh installs it)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is missing"

rm -rf "$DEMO"
mkdir -p "$INST" "$BK"

step "1. Creating the sample database $INST/sales.db (~100 MB)"
start=$(date +%s)
sqlite3 -batch "$INST/sales.db" >/dev/null <<'SQL'
PRAGMA page_size=4096;
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
BEGIN;
CREATE TABLE customers(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
  city TEXT NOT NULL, created TEXT NOT NULL, balance REAL NOT NULL);
CREATE TABLE orders(
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  ordered_at TEXT NOT NULL, status TEXT NOT NULL, total REAL NOT NULL,
  note TEXT);
CREATE TABLE order_items(
  id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
  product TEXT NOT NULL, qty INTEGER NOT NULL, price REAL NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                        WHERE i < 115000)
INSERT INTO customers
SELECT i,
  'Customer ' || i || ' ' ||
    substr('AdamsBakerClarkDavisEvansFosterGreenHarris', 1 + (i * 7) % 36, 6),
  'user' || i || '@example.' || substr('comorgnetdeio', 1 + (i % 4) * 3, 3),
  rtrim(substr('Berlin    Lisbon    Oslo      Madrid    Paris     Vienna    '
               || 'Prague    Dublin    ', 1 + (i % 8) * 10, 10)),
  date('2015-01-01', '+' || (i % 3000) || ' days'),
  round((abs(random()) % 1000000) / 100.0, 2)
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                        WHERE i < 380000)
INSERT INTO orders
SELECT i, 1 + abs(random()) % 115000,
  datetime('2018-01-01', '+' || (i * 37 % 200000000 / 100) || ' seconds'),
  rtrim(substr('new     paid    shipped returnedclosed  ', 1 + (i % 5) * 8, 8)),
  round((abs(random()) % 500000) / 100.0, 2),
  CASE WHEN i % 3 = 0 THEN 'gift wrap, deliver after ' || (i % 12 + 8) ||
       ':00, ref ' || hex(randomblob(6)) END
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                        WHERE i < 900000)
INSERT INTO order_items
SELECT i, 1 + abs(random()) % 380000,
  'SKU-' || printf('%06d', abs(random()) % 100000) || ' ' ||
    rtrim(substr('widget  gadget  sprocketgizmo   doohickey', 1 + (i % 5) * 8,
                 8)),
  1 + abs(random()) % 9,
  round((abs(random()) % 20000) / 100.0, 2)
FROM n;
CREATE INDEX customers_email ON customers(email);
CREATE INDEX orders_customer ON orders(customer_id, ordered_at);
CREATE INDEX order_items_order ON order_items(order_id);
COMMIT;
SQL
size=$(stat -c %s "$INST/sales.db")
echo "    sales.db: $size bytes, made in $(( $(date +%s) - start )) s"

step "2. Backing it up through 4 virtual devices"
echo "    \$ vdi backup sales --instance $INST --to $BK --stripes 4"
"$VDI" backup sales --instance "$INST" --to "$BK" --stripes 4 ||
  die "vdi backup exited $?"
# The repository keeps each backup as a set: BK/sales/<ID>/ holds the stripes
# and the manifest.
ls -l "$BK"/sales/*/

step "3. Listing and verifying the backup"
"$VDI" list --from "$BK" || die "vdi list exited $?"
"$VDI" verify --instance "$INST" --from "$BK" || die "vdi verify exited $?"

step "4. Restoring it as a new database, sales_restored"
echo "    \$ vdi restore sales --instance $INST --from $BK --as sales_restored"
"$VDI" restore sales --instance "$INST" --from "$BK" --as sales_restored ||
  die "vdi restore exited $?"
[ -f "$INST/sales_restored.db" ] || die "no $INST/sales_restored.db"

step "5. Comparing sales and sales_restored"
ok=1
check=$(sqlite3 -batch "$INST/sales_restored.db" "PRAGMA integrity_check")
echo "    integrity_check of sales_restored: $check"
[ "$check" = "ok" ] || ok=0
printf '    %-12s %10s %10s  %-18s %-18s %s\n' table "rows" "rows" \
  "sha256 (sales)" "sha256 (restored)" ""
for t in customers orders order_items sqlite_schema; do
  key=id
  [ "$t" = sqlite_schema ] && key="type, name"
  n1=$(sqlite3 -batch "$INST/sales.db" "SELECT count(*) FROM $t")
  n2=$(sqlite3 -batch "$INST/sales_restored.db" "SELECT count(*) FROM $t")
  h1=$(sqlite3 -batch "$INST/sales.db" "SELECT * FROM $t ORDER BY $key" |
       sha256sum | cut -c1-16)
  h2=$(sqlite3 -batch "$INST/sales_restored.db" \
       "SELECT * FROM $t ORDER BY $key" | sha256sum | cut -c1-16)
  same=equal
  if [ "$n1" != "$n2" ] || [ "$h1" != "$h2" ]; then same=DIFFERENT; ok=0; fi
  printf '    %-12s %10s %10s  %-18s %-18s %s\n' "$t" "$n1" "$n2" "$h1" "$h2" \
    "$same"
done

if [ "$ok" = 1 ]; then
  printf '\ndemo: OK - the restored database holds the same rows.\n'
  exit 0
fi
die "the restored database differs from the original"
