# Shared by tools/demo.sh and tools/run-demo.sh (sourced, not run).

# demo_nginx_head DIR MODULE LAST_FIELD: the start of a private-prefix
# nginx.conf for the demos, up to inside "http {": the module (MODULE; an
# empty value for an nginx with the module linked in), pid, error log and
# temporary paths under DIR, and the "ciba" log format, whose last field
# is LAST_FIELD (e.g. 'jti=$ciba_jti').
demo_nginx_head() {
    local dir="$1" module="$2" last="$3"

    if [ -n "$module" ]; then
        printf 'load_module %s;\n' "$module"
    fi

    cat <<CONF
worker_processes 2;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
events { worker_connections 256; }

http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    log_format ciba '\$remote_addr "\$request" \$status '
                    'decision=\$ciba_decision reason=\$ciba_reason '
                    'action=\$ciba_action approver=\$ciba_approver '
                    '$last';
CONF
}
