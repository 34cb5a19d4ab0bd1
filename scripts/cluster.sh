# Sourced by the scripts: a throwaway PostgreSQL cluster in a temporary folder.
#   cluster_start DIR PORT [extra postgresql.conf lines...]   then PGHOST/PGPORT are set
#   cluster_stop DIR
# initdb refuses root, so as root the server runs as the `postgres` account.
# PG_CONFIG picks the PostgreSQL installation (default: the one on PATH).
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BIN=$("$PG_CONFIG" --bindir)

as_server_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_start() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    # (each failure said and returned, whether or not the caller runs under set -e)
    if ! as_server_user "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync \
            >"$dir/initdb.log" 2>&1; then
        echo "cluster_start: initdb failed ($dir/initdb.log):" >&2
        tail -n 20 "$dir/initdb.log" >&2
        return 1
    fi
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $port"
        for line in "$@"; do echo "$line"; done
    } | as_server_user tee -a "$dir/data/postgresql.conf" >/dev/null
    if ! as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null; then
        echo "cluster_start: the server did not start on port $port ($dir/server.log):" >&2
        tail -n 20 "$dir/server.log" >&2
        return 1
    fi
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

cluster_stop() {
    local dir=$1
    [ -d "$dir/data" ] && as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

install_extension() {
    if [ "$(id -u)" -eq 0 ]; then make -s install PG_CONFIG="$PG_CONFIG" >/dev/null
    else sudo make -s install PG_CONFIG="$PG_CONFIG" >/dev/null; fi
}
