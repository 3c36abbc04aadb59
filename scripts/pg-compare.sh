#!/usr/bin/env bash
# scripts/pg-compare.sh: PostgreSQL's durable-insert rate and Lesson Ledger's single-POST
# write rate, side by side in ONE run on this machine, with the ratios and the signature
# limit measured in the same run. About 2 × DURATION + 30 s once the release bench is
# built (`cargo bench --no-run --bench http_load`: minutes on two cores).
#
#   DURATION=10 ENTRIES=5000 scripts/pg-compare.sh
#
# 1. A throwaway PostgreSQL cluster (Debian's `postgresql`: initdb/pg_ctl of the newest
#    /usr/lib/postgresql/*/bin) in a temporary directory, Unix socket only, fsync=on,
#    synchronous_commit=on; as root it runs as user `postgres` (or `nobody`), since
#    PostgreSQL refuses to run as root. pgbench runs a custom script: one transaction a
#    row insert of a 600-byte text (a bigserial key, no signature, no tree), for DURATION
#    seconds with 1 client, then with 64 clients (2 threads). The cluster is removed.
# 2. `cargo bench --bench http_load` with LEDGER_BENCH_HTTP_PHASES=library,single,single1:
#    the raw strict-signature rate (the limit), the library's append, then ENTRIES single
#    POSTs of registrations (three signatures: operator, new key, association) and of
#    pledges (one) over 64 connections.
# 3. A table: each rate, its ratio to PostgreSQL at 1 and 64 clients, and the single POSTs'
#    share of the signature limit. The raw outputs are kept in $OUT (default a temp dir).
set -euo pipefail

DURATION=${DURATION:-10}
ENTRIES=${ENTRIES:-5000}
root=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/pg-compare-out.XXXXXX)}
mkdir -p "$OUT"

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" ]] || {
  echo "pg-compare: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 2
}
pgbench=$(command -v pgbench || echo "$pg_bin/pgbench")
psql=$(command -v psql || echo "$pg_bin/psql")

pg_user=$(id -un)
as_pg() { "$@"; }
if [[ $(id -u) -eq 0 ]]; then
  pg_user=postgres
  id postgres >/dev/null 2>&1 || pg_user=nobody
  as_pg() { (cd / && runuser -u "$pg_user" -- "$@"); }
fi

work=$(mktemp -d /tmp/pg-compare.XXXXXX)
chown "$pg_user" "$work"
stop_pg() {
  if [[ -f "$work/data/postmaster.pid" ]]; then
    as_pg "$pg_bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
trap 'stop_pg; rm -rf "$work"' EXIT

echo "pg-compare: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') as $pg_user in $work; $DURATION s a run"
as_pg "$pg_bin/initdb" -D "$work/data" -U bench --auth=trust --no-instructions >"$OUT/initdb.log"
as_pg "$pg_bin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w -o \
  "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c listen_addresses='' \
   -c unix_socket_directories=$work -c max_connections=80" start >/dev/null
psql_() { as_pg "$psql" -X -q -h "$work" -U bench -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_ -c "SHOW fsync" -c "SHOW synchronous_commit" -t | tr -s ' \n' ' ' | sed 's/^/pg-compare: fsync, synchronous_commit:/; s/$/\n/'
psql_ -c "CREATE TABLE entries (id bigserial PRIMARY KEY, body text NOT NULL)"
cat >"$work/insert.sql" <<'SQL'
INSERT INTO entries (body) VALUES (rpad(md5(random()::text), 600, md5(random()::text)));
SQL
chown "$pg_user" "$work/insert.sql"

pg_rate() { # clients threads
  as_pg "$pgbench" -n -h "$work" -U bench -d postgres -f "$work/insert.sql" \
    -c "$1" -j "$2" -T "$DURATION" >"$OUT/pgbench-$1.txt" 2>&1
  sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$OUT/pgbench-$1.txt"
}
pg1=$(pg_rate 1 1)
pg64=$(pg_rate 64 2)
rows=$(psql_ -t -A -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('entries')) FROM entries")
echo "pg-compare: PostgreSQL: 1 client $pg1/s, 64 clients $pg64/s ($rows)"
stop_pg

echo "pg-compare: cargo bench --bench http_load (library, single, single1; $ENTRIES entries a phase)"
(cd "$root" && LEDGER_BENCH_HTTP_PHASES=library,single,single1 LEDGER_BENCH_HTTP_ENTRIES=$ENTRIES \
  LEDGER_BENCH_HTTP_STUDENTS=${LEDGER_BENCH_HTTP_STUDENTS:-100} LEDGER_BENCH_HTTP_SECS=${LEDGER_BENCH_HTTP_SECS:-2} \
  cargo bench --quiet --bench http_load 2>"$OUT/http_load.stderr") | tee "$OUT/http_load.txt"

field() { # line prefix, then the number before " <unit>"
  sed -n "s|^$1 *\([0-9.]*\) $2.*|\1|p" "$OUT/http_load.txt" | head -n 1
}
p99() { sed -n "s|^$1.* p99 \([0-9][^ ]*\) (target.*|\1|p" "$OUT/http_load.txt" | head -n 1; }
raw=$(field "raw verify_strict, all cores" "sig/s")
library=$(field "library: verify + Ledger::submit, 1024 a batch" "entries/s")
single2=$(field "single-entry POSTs, 64 keep-alive connections" "entries/s")
single1=$(field "single-entry POSTs, one signature (pledges)" "entries/s")
for v in pg1 pg64 raw single2 single1; do
  [[ -n "${!v}" ]] || { echo "pg-compare: no figure for $v (outputs in $OUT)" >&2; exit 1; }
done

echo
echo "Side by side, one run ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)):"
awk -v pg1="$pg1" -v pg64="$pg64" -v raw="$raw" -v lib="${library:-0}" \
  -v s2="$single2" -v s1="$single1" -v p2="$(p99 'single-entry POSTs, 64 keep')" \
  -v p1="$(p99 'single-entry POSTs, one signature')" 'BEGIN {
  f = "| %-62s | %9s | %7s | %8s | %s |\n"
  printf f, "figure", "per s", "/ PG 1", "/ PG 64", "share of the signature limit"
  printf f, "---", "---:", "---:", "---:", "---"
  printf f, "PostgreSQL, 1 client, one 600-byte row a transaction", sprintf("%.0f", pg1), "1.00", sprintf("%.2f", pg1/pg64), "-"
  printf f, "PostgreSQL, 64 clients", sprintf("%.0f", pg64), sprintf("%.2f", pg64/pg1), "1.00", "-"
  printf f, "raw verify_strict, both cores (sig/s)", sprintf("%.0f", raw), "-", "-", "the limit: " sprintf("%.0f", raw/3) " three-signature entries/s"
  if (lib > 0) printf f, "library append, batches of 1,024, three signatures", sprintf("%.0f", lib), sprintf("%.2f", lib/pg1), sprintf("%.2f", lib/pg64), sprintf("%.0f%%", 100*lib/(raw/3))
  printf f, "Lesson Ledger single POSTs, three signatures, 64 conns, p99 " p2, sprintf("%.0f", s2), sprintf("%.2f", s2/pg1), sprintf("%.2f", s2/pg64), sprintf("%.0f%%", 100*s2/(raw/3))
  printf f, "Lesson Ledger single POSTs, one signature, 64 conns, p99 " p1, sprintf("%.0f", s1), sprintf("%.2f", s1/pg1), sprintf("%.2f", s1/pg64), sprintf("%.0f%%", 100*s1/raw)
}'
echo "(raw outputs: $OUT)"
