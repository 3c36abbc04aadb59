"""`python3 scripts/seal-group-io.py [GROUPS [DIR]]` (BENCHMARKS.md, log.dat format 3).
Per-group I/O of log.dat's commit, three orders, alternated round-robin on one file
each: format 2 (records + seal, one fdatasync), format 3 (records, fdatasync, seal
pwrite), and the rejected fix (records, fdatasync, seal, fdatasync). Median and p90 µs."""
import os, sys, time, statistics
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
d = sys.argv[2] if len(sys.argv) > 2 else "."
REC = os.urandom(1500)   # ~ a group of two-signature entries' records
SLOT = os.urandom(32)
def v2(fd, end): os.pwrite(fd, REC, end); os.pwrite(fd, SLOT, 8); os.fdatasync(fd)
def v3(fd, end): os.pwrite(fd, REC, end); os.fdatasync(fd); os.pwrite(fd, SLOT, 8)
def two(fd, end): os.pwrite(fd, REC, end); os.fdatasync(fd); os.pwrite(fd, SLOT, 8); os.fdatasync(fd)
orders = {"format 2 (seal before the sync)": v2, "format 3 (seal after the sync)": v3,
          "second fdatasync a group": two}
fds = {k: os.open(os.path.join(d, f"group-io-{i}.dat"), os.O_RDWR | os.O_CREAT | os.O_TRUNC)
       for i, k in enumerate(orders)}
ends = {k: 72 for k in orders}
for fd in fds.values(): os.pwrite(fd, b"\0" * 72, 0); os.fsync(fd)
times = {k: [] for k in orders}
for _ in range(N):
    for k, f in orders.items():
        t = time.perf_counter(); f(fds[k], ends[k]); times[k].append((time.perf_counter() - t) * 1e6)
        ends[k] += len(REC)
for k, ts in times.items():
    ts.sort()
    print(f"{k:34s} median {statistics.median(ts):8.0f} µs  p90 {ts[int(len(ts)*0.9)]:8.0f} µs  ({N} groups)")
for k in orders: os.close(fds[k]); os.remove(os.path.join(d, f"group-io-{list(orders).index(k)}.dat"))
