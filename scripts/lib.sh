# scripts/lib.sh: what the operational scripts share; sourced, never run.
#
# ledger_bin ROOT: sets the array `bin` to the lesson-ledger command: $LEDGER_BIN when set,
# else ROOT's release build, else its debug build, else `cargo run --release`. An array,
# so that the `cargo run` form keeps its arguments apart.
ledger_bin() {
  local root=$1
  if [[ -n "${LEDGER_BIN:-}" ]]; then
    bin=("$LEDGER_BIN")
  elif [[ -x "$root/target/release/lesson-ledger" ]]; then
    bin=("$root/target/release/lesson-ledger")
  elif [[ -x "$root/target/debug/lesson-ledger" ]]; then
    bin=("$root/target/debug/lesson-ledger")
  else
    bin=(cargo run --quiet --release --manifest-path "$root/Cargo.toml" --)
  fi
}

# nginx_start DIR ROOT WORKERS: Debian's nginx ($NGINX, default /usr/sbin/nginx) serving
# ROOT on a free loopback port as this user, its config, pid, logs and temporary paths
# under DIR. Sets `nginx_port` and `nginx_pid`; the caller stops it (kill $nginx_pid).
nginx_start() {
  local dir=$1 root=$2 workers=$3
  mkdir -p "$dir"
  nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$nginx_port; root $root; }
}
CONF
  "${NGINX:-/usr/sbin/nginx}" -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" &
  nginx_pid=$!
}
