#!/usr/bin/env bash
# "make demo": the whole product on loopback, in one command.
#
# Starts the development authorization server (tools/dev-as, npm
# oidc-provider), a sample tool API and the stock nginx with the module in
# front of it (CIBA poll mode), prints the URLs, then plays one round trip
# in the terminal: the agent CLI (tools/ciba-agent) calls a protected
# action, the human is asked, the command-line approver (tools/ciba-approve)
# approves it through the AS's admin API, the agent's retry gets through
# once; a second action is denied.  Everything then keeps running for you
# to try (the approver page in a browser, the agent CLI) until Ctrl-C,
# which stops all of it.
#
# Environment: CIBA_DEMO_PORT (nginx, 8080; the tool API listens on
# PORT+1), CIBA_DEMO_AS_PORT (the AS, 9000), CIBA_DEMO_DIR (build/demo),
# CIBA_NGINX (/usr/sbin/nginx), CIBA_MODULE (build/ngx_http_ciba_module.so;
# empty for an nginx with the module linked in), CIBA_DEMO_ONCE=1 (stop
# after the round trip, for tests), CIBA_DEMO_APPROVE_AFTER (seconds the
# "human" takes, 3).

set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=tools/demo-lib.sh
. "$top/tools/demo-lib.sh"
port="${CIBA_DEMO_PORT:-8080}"
api_port="$((port + 1))"
as_port="${CIBA_DEMO_AS_PORT:-9000}"
dir="${CIBA_DEMO_DIR:-$top/build/demo}"
nginx="${CIBA_NGINX:-/usr/sbin/nginx}"
module="${CIBA_MODULE-$top/build/ngx_http_ciba_module.so}"
once="${CIBA_DEMO_ONCE:-0}"
think="${CIBA_DEMO_APPROVE_AFTER:-3}"

base="http://127.0.0.1:$port"
as="http://127.0.0.1:$as_port"
as_pid=""
idle=""
nginx_up=0

# nginx takes $NGINX for sockets inherited on a binary upgrade
unset NGINX

die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

bold() {
    if [ -t 1 ]; then
        printf '\n\033[1m%s\033[0m\n' "$*"
    else
        printf '\n%s\n' "$*"
    fi
}

# true when something accepts connections on 127.0.0.1:$1
listening() {
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null
}

stop_all() {
    local i

    trap - EXIT INT TERM

    if [ -n "$idle" ]; then
        kill "$idle" 2> /dev/null || true
    fi

    if [ "$nginx_up" = 1 ]; then
        "$nginx" -p "$dir" -c conf/nginx.conf -s quit 2> /dev/null || true
        for i in $(seq 50); do
            [ -s "$dir/logs/nginx.pid" ] || break
            sleep 0.1
        done
    fi

    if [ -n "$as_pid" ] && kill -0 "$as_pid" 2> /dev/null; then
        kill -TERM "$as_pid" 2> /dev/null || true
        wait "$as_pid" 2> /dev/null || true
    fi

    if [ "$nginx_up" = 1 ] || [ -n "$as_pid" ]; then
        echo "demo: stopped nginx and the development AS"
    fi
}

# ---- checks ------------------------------------------------------------------

[ -x "$nginx" ] || die "no nginx at $nginx (make deps installs it)"
if [ -n "$module" ] && [ ! -f "$module" ]; then
    die "no module at $module (make module builds it)"
fi
command -v node > /dev/null 2>&1 || die "node is missing (make deps)"
[ -d "$top/tools/dev-as/node_modules/oidc-provider" ] \
    || die "the development AS is not installed (make deps runs npm ci)"

for p in "$port" "$api_port" "$as_port"; do
    if listening "$p"; then
        die "127.0.0.1:$p is in use; set CIBA_DEMO_PORT / CIBA_DEMO_AS_PORT"
    fi
done

mkdir -p "$dir/conf" "$dir/logs" "$dir/tmp"
rm -f "$dir/logs/"*.log "$dir/as-jwks.json"

trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the development authorization server --------------------------------

node "$top/tools/dev-as/dev-as.mjs" --port "$as_port" --interval 2 \
    --binding-message-max 64 --jwks-out "$dir/as-jwks.json" \
    > "$dir/logs/as.out" 2> "$dir/logs/as.log" < /dev/null &
as_pid=$!

for _ in $(seq 300); do
    if grep -q '^dev-as listening on' "$dir/logs/as.out" 2> /dev/null \
        && [ -s "$dir/as-jwks.json" ]
    then
        break
    fi
    if ! kill -0 "$as_pid" 2> /dev/null; then
        wait "$as_pid" 2> /dev/null || true
        as_pid=""
        cat "$dir/logs/as.log" >&2
        die "the development AS did not start (log above)"
    fi
    sleep 0.1
done
grep -q '^dev-as listening on' "$dir/logs/as.out" \
    || die "the development AS did not start within 30 s"

# ---- nginx: the tool API and the protected locations ----------------------


# client_secret_basic for the client nginx-poll of tools/dev-as
basic="$(printf '%s' 'nginx-poll:poll-secret' | base64 -w0)"

{
    demo_nginx_head "$dir" "$module" 'ref=$ciba_request_ref'
    cat <<CONF

    ciba_zone approvals:1m;

    # the approvals' access tokens: JWTs signed by the AS (its JWKS)
    ciba_key_file $dir/as-jwks.json;
    ciba_issuer   $as;
    ciba_audience https://tools.example;

    # what the human reads: the development AS accepts spaces and some
    # punctuation, up to 64 characters (tools/dev-as: "Binding messages");
    # other bytes become "_"
    ciba_binding_message_chars "A-Za-z0-9 \-._+/!?#,:";
    ciba_binding_message_max   64;

    # the sample tool API (an agent's tools)
    server {
        listen 127.0.0.1:$api_port;
        access_log off;
        default_type application/json;

        location /refund {
            return 200 '{"tool":"refund","done":true,"order":"\$arg_order","amount":"\$arg_amount"}\n';
        }

        location /delete-repo {
            return 200 '{"tool":"delete-repo","done":true,"repo":"\$arg_repo"}\n';
        }

        location /orders {
            return 200 '{"tool":"orders","orders":[{"id":"A17","amount":30},{"id":"B42","amount":120}]}\n';
        }
    }

    server {
        listen 127.0.0.1:$port;
        server_name tools.example;
        access_log $dir/logs/access.log ciba;

        # the authorization server, as the module's CIBA client
        location = /_ciba/backchannel {
            internal;
            proxy_pass http://127.0.0.1:$as_port/backchannel;
            proxy_set_header Authorization "Basic $basic";
            proxy_read_timeout 5s;
            subrequest_output_buffer_size 16k;
        }

        location = /_ciba/token {
            internal;
            proxy_pass http://127.0.0.1:$as_port/token;
            proxy_set_header Authorization "Basic $basic";
            proxy_read_timeout 5s;
            subrequest_output_buffer_size 16k;
        }

        # reading is not sensitive: no approval
        location = /tools/orders {
            proxy_pass http://127.0.0.1:$api_port/orders;
        }

        # sensitive actions: a human approves each one
        location = /tools/refund {
            ciba                      on;
            ciba_action               refund;
            ciba_backchannel_endpoint /_ciba/backchannel;
            ciba_token_endpoint       /_ciba/token;
            ciba_login_hint           \$http_x_user;
            ciba_binding_message      "Refund \$ciba_arg_amount EUR on order \$ciba_arg_order";
            proxy_set_header          Approval-Token "";
            proxy_set_header          Approval-Handle "";
            proxy_pass                http://127.0.0.1:$api_port/refund;
        }

        location = /tools/delete-repo {
            ciba                      on;
            ciba_action               delete-repo;
            ciba_backchannel_endpoint /_ciba/backchannel;
            ciba_token_endpoint       /_ciba/token;
            ciba_login_hint           \$http_x_user;
            ciba_binding_message      "Delete repository \$ciba_arg_repo";
            proxy_set_header          Approval-Token "";
            proxy_set_header          Approval-Handle "";
            proxy_pass                http://127.0.0.1:$api_port/delete-repo;
        }
    }
}
CONF
} > "$dir/conf/nginx.conf"

"$nginx" -p "$dir" -c conf/nginx.conf -t -q \
    || die "nginx -t failed for $dir/conf/nginx.conf"
"$nginx" -p "$dir" -c conf/nginx.conf
nginx_up=1

for _ in $(seq 50); do
    listening "$port" && break
    sleep 0.1
done
listening "$port" || die "nginx does not listen on 127.0.0.1:$port"

bold "ngx_http_ciba_module demo"
cat <<TXT
  approver page (the human's device)  $as/approver
  protected tool (POST, needs a human) $base/tools/refund?order=B42&amount=120
  protected tool (POST, needs a human) $base/tools/delete-repo?repo=payments
  open tool (GET, no approval)         $base/tools/orders
  authorization server (oidc-provider) $as  (users: alice, bob, carol)
  logs                                 $dir/logs
TXT

# approve_when_asked DECISION MESSAGE: the "human": waits (up to 30 s)
# for the approval request showing that binding message, reads it and
# what the request holds (tools/ciba-approve show: the action, the
# arguments, the body's hash), then decides
approve_when_asked() {
    local decision="$1" message="$2" id="" deadline

    deadline=$((SECONDS + 30))
    while [ -z "$id" ] && [ "$SECONDS" -lt "$deadline" ]; do
        id="$("$top/tools/ciba-approve" --as "$as" --json list 2> /dev/null \
              | node -e '
                  let s = "";
                  process.stdin.on("data", (d) => s += d);
                  process.stdin.on("end", () => {
                      const p = (JSON.parse(s).pending || []).find(
                          (r) => r.binding_message === process.argv[1]);
                      if (p) console.log(p.auth_req_id);
                  });' "$message" || true)"
        [ -n "$id" ] || sleep 0.2
    done
    if [ -z "$id" ]; then
        echo "demo: the AS never showed \"$message\"" >&2
        return 1
    fi

    sleep "$think"
    printf '\n[human] my device shows "%s"\n' "$message"
    printf '$ tools/ciba-approve show %s...\n' "${id:0:8}"
    "$top/tools/ciba-approve" --as "$as" show "$id" \
        | grep -v '^expires in' | sed -u 's/^/  /'
    printf '[human] %s\n' "$decision"
    printf '$ tools/ciba-approve %s %s...\n' "$decision" "${id:0:8}"
    "$top/tools/ciba-approve" --as "$as" "$decision" "$id" | sed -u 's/^/  /'
}

# agent ARGS...: the agent CLI, its output indented
agent() {
    "$top/tools/ciba-agent" "$@" 2>&1 | sed -u 's/^/  /'
    return "${PIPESTATUS[0]}"
}

url="$base/tools/refund?order=B42&amount=120"
body='{"reason":"duplicate charge"}'

bold "1. The agent asks for a refund; alice must approve it"
printf '$ tools/ciba-agent -X POST -H "X-User: alice" -d %s \\\n    %s\n' \
    "'$body'" "'$url'"

approve_when_asked approve "Refund 120 EUR on order B42" &
human=$!
rc=0
agent -X POST -H 'X-User: alice' -H 'Content-Type: application/json' \
    -d "$body" --max-wait 60 "$url" || rc=$?
wait "$human" || die "the approval step failed"
[ "$rc" = 0 ] || die "the approved action did not get through (exit $rc)"

bold "2. The agent asks to delete a repository; alice denies it"
url2="$base/tools/delete-repo?repo=payments"
printf '$ tools/ciba-agent -X POST -H "X-User: alice" %s\n' "'$url2'"
approve_when_asked deny "Delete repository payments" &
human=$!
rc=0
agent -X POST -H 'X-User: alice' --max-wait 60 "$url2" || rc=$?
wait "$human" || die "the deny step failed"
[ "$rc" != 0 ] || die "the denied action got through"
printf '  (the agent exited %s: denied)\n' "$rc"

bold "3. What nginx logged (one decision line per request)"
grep -h 'ciba: decision' "$dir/logs/error.log" \
    | sed -e 's/^.*ciba: /  ciba: /' -e 's/, client:.*$//' \
          -e 's/ while [a-z ]*$//' | tail -n 12
echo
sed -e 's/^/  /' "$dir/logs/access.log" | tail -n 12

if [ "$once" = 1 ]; then
    bold "Demo done (CIBA_DEMO_ONCE=1): stopping."
    exit 0
fi

bold "Everything keeps running: try it yourself"
cat <<TXT
  Open $as/approver in a browser, then in another terminal:

    tools/ciba-agent -X POST -H 'X-User: alice' \\
        '$base/tools/refund?order=A17&amount=30'

  and approve or deny on the page (or: tools/ciba-approve --as $as list).
  Ctrl-C stops nginx and the authorization server.
TXT

# wait (not a foreground sleep) returns at once when a signal comes,
# also when only this shell gets it (kill -INT), not the whole group
while :; do
    sleep 3600 &
    idle=$!
    wait "$idle" || true
done
