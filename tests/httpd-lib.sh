# httpd-lib.sh -- what the lp_httpd tests with curl share (t0313-t0319):
# the test server (tests/unit-httpd serve) and a curl that keeps the
# answer's status, headers and body apart. Sourced after lib.sh.

# start_httpd [NAME] ARGS...: call it outside test bodies. Starts
# unit-httpd serve on 127.0.0.1:0 (unless ARGS say where) writing its
# items to NAME.items (default "httpd"), sets HTTPD_PID and ADDR (the first
# address it listens on); its exit status goes to NAME.rc; stopped by pid
# at exit like the servers of lib.sh.
start_httpd() {
    _n=httpd
    case ${1:-} in --*) ;; *) _n=$1; shift ;; esac
    rm -f "$_n.addr"
    case " $* " in
    *" --listen "*|*" --systemd "*) _l= ;;
    *) _l="--listen 127.0.0.1:0" ;;
    esac
    rm -f "$_n.pid" "$_n.rc"
    # its exit status goes to NAME.rc (the subshell waits for it; it runs
    # no EXIT trap of lib.sh's: that would stop every server)
    ( trap - EXIT INT TERM PIPE
      "$TOP/tests/unit-httpd" serve $_l --addr-file "$_n.addr" \
          --items "$_n.items" "$@" 2>"$_n.err" &
      echo $! >"$_n.pid"
      echo $! >>"$TMP/.pids"
      _rc=0; wait $! || _rc=$?      # (set -e in a test body)
      echo $_rc >"$_n.rc" ) &
    wait_for 20 test -s "$_n.pid" || :
    HTTPD_PID=$(cat "$_n.pid")
    # it may exit instead (a bad option): do not wait for it then
    wait_for 20 "test -s $_n.addr || test -s $_n.rc" || :
    if ! test -s "$_n.addr"; then
        sed -e 's/^/# /' "$_n.err"
        echo "Bail out! unit-httpd serve did not start"
        exit 1
    fi
    ADDR=$(head -n 1 "$_n.addr")
}

# req ARGS...: curl ARGS; the status goes to ./code, the headers to
# ./hdrs, the body to ./body; curl's own failure fails
req() {
    curl -sS -o body -D hdrs -w '%{http_code}\n' "$@" >code
}

# code_is N: the last req's status is N
code_is() {
    if [ "$(cat code)" != "$1" ]; then
        echo "status $(cat code), expected $1; body:" >&2
        cat body >&2
        echo >&2    # bodies end without a LF: the next TAP line stays its own
        return 1
    fi
}

# hdr NAME: the value of the last req's header NAME (CR cut)
hdr() {
    tr -d '\r' <hdrs | sed -n "s/^$1: //Ip"
}

# alive: the server still answers GET /healthz
alive() {
    test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' \
        "http://$ADDR/healthz")" = 200
}

# start_http NAME ARGS...: call it outside test bodies (or in one, for a
# restart). Starts logpipe-http --listen 127.0.0.1:0 (unless ARGS say
# where) with ARGS, its stderr in NAME.err, its exit status to NAME.rc
# once it ends; sets HTTP_PID and ADDR (the first address it listens
# on), also in NAME.pid and NAME.addr. Stopped by pid at exit like the
# servers of lib.sh.
start_http() {
    _n=$1
    shift
    rm -f "$_n.addr" "$_n.pid" "$_n.rc"
    case " $* " in
    *" --listen "*) _l= ;;
    *) _l="--listen 127.0.0.1:0" ;;
    esac
    ( trap - EXIT INT TERM PIPE
      LOGPIPE_TEST_ADDR_FILE="$TMP/$_n.addr" logpipe-http $_l "$@" \
          2>"$_n.err" &
      echo $! >"$_n.pid"
      echo $! >>"$TMP/.pids"
      _rc=0; wait $! || _rc=$?      # (set -e in a test body)
      echo $_rc >"$_n.rc" ) 2>/dev/null &
    # (the subshell's own stderr: the shell's "Killed" when a test
    # SIGKILLs it; logpipe-http's is NAME.err)
    wait_for 20 test -s "$_n.pid" || :
    HTTP_PID=$(cat "$_n.pid")
    wait_for 20 "test -s $_n.addr || test -s $_n.rc" || :
    if ! test -s "$_n.addr"; then
        sed -e 's/^/# /' "$_n.err"
        echo "# logpipe-http did not start"
        return 1
    fi
    ADDR=$(head -n 1 "$_n.addr")
}

# stop_http NAME [SIGNAL]: signals NAME's logpipe-http (TERM) and waits
# for its exit status, in NAME.rc
stop_http() {
    kill "-${2:-TERM}" "$(cat "$1.pid")" 2>/dev/null || :
    wait_for 60 test -s "$1.rc"
}

# stream_data [KEY]: the data of each entry of stream KEY (logs:stream),
# one a line
stream_data() {
    rcli --raw XRANGE "${1:-logs:stream}" - + | awk 'NR % 3 == 0'
}
