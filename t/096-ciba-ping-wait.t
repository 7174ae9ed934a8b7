# CIBA ping mode and wait mode, against the scriptable mock AS
# (t/fixtures/mock-as/mock-as.mjs), with nginx run by t/CibaNginx.pm:
#
# - ping ("ciba_delivery ping"): each backchannel request carries a fresh
#   client_notification_token (256 bits, 43 base64url characters); before
#   the AS pings, retries (bare or with the handle) are answered pending
#   without asking the token endpoint, even after the interval; the mock's
#   ping reaches the "ciba_callback" location (204) and the next retry
#   asks the token endpoint exactly once and passes; the callback refuses
#   wrong or missing bearer tokens and unknown auth_req_ids (401 with
#   WWW-Authenticate: Bearer error="invalid_token"), bad bodies (400) and
#   other methods (405), and a refused ping leaves the approval not ready;
#   no notification token ever reaches the logs; the safety net polls after
#   max(6 * interval, 30) s when no ping comes (run alongside the rest, so
#   that the file takes about 40 s);
#   a stale ping does not ready a newer approval of the same request; a
#   held request in ping mode is woken within the interval after the ping;
#   the pending answer's interval is the AS's with or without the handle;
# - wait ("ciba_wait 6s", poll client, mock interval 1 s): a held request
#   passes once the human approves (one token request per interval:
#   polls are paced in whole seconds plus one, so never early, between 1
#   and 2 s apart here), answers pending when the wait elapses, denied as soon as a poll sees
#   it; a client that goes away ends the wait (499, nothing leaks, the
#   approval goes on); 20 held requests for 20 subjects pass together.
#
# Plain Perl (not a data-driven Test::Nginx file): approvals happen while a
# request is held, from forked children.  Ports: nginx on
# TEST_NGINX_SERVER_PORT, the mock on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

BEGIN {
    plan skip_all => 'timing-based (held requests, 30 s safety net): not '
                     . 'run under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64url);
use POSIX ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use MockAS;

{
    my $v = `node --version 2>/dev/null` // '';
    plan skip_all => 'node is missing' if $? != 0 || $v !~ /^v(\d+)\./;
    plan skip_all => "node $v is older than 20" if $1 < 20;
}

my $JSON = JSON::PP->new->canonical->allow_nonref;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $mport = $port + 1;
my $MOCK = "http://127.0.0.1:$mport";
my $acclog = $ng->servroot . '/logs/access.log';

my $T0 = time;


# ---- the mock AS -------------------------------------------------------------

eval {
    MockAS::start($mport, stderr => $ng->servroot . '/logs/mock-as.log');
    1;
} or BAIL_OUT("mock-as: $@");

my $HT = HTTP::Tiny->new(timeout => 15, keep_alive => 0);

# mock($method, $path, $json): the decoded JSON answer (and the status)
sub mock {
    my ($method, $path, $in) = @_;
    my $res = $HT->request($method, "$MOCK$path", {
        headers => { 'Content-Type' => 'application/json' },
        defined $in ? (content => $JSON->encode($in)) : () });
    my $out = eval { $JSON->decode($res->{content}) };
    return wantarray ? ($res->{status}, $out) : $out;
}

# the mock's auth requests of a user (oldest first)
sub auths_for {
    my ($user, $client) = @_;
    my @a = sort { $a->{created_at} <=> $b->{created_at} }
           grep { $_->{login_hint} eq $user
                  && (!$client || $_->{client_id} eq $client) }
           @{ mock(GET => '/_admin/auth')->{auth_requests} };
    return @a;
}

# the token requests the mock received for an auth_req_id
sub token_reqs {
    my ($id) = @_;
    return grep { ref $_->{form} eq 'HASH'
                  && ($_->{form}{auth_req_id} // '') eq $id }
           @{ mock(GET => '/_admin/requests?path=/token')->{requests} };
}

# the backchannel requests the mock received for a user
sub bc_reqs {
    my ($user) = @_;
    return grep { ref $_->{form} eq 'HASH'
                  && ($_->{form}{login_hint} // '') eq $user }
           @{ mock(GET => '/_admin/requests?path=/bc-authorize')->{requests} };
}

my @USERS = (qw(alice bob carol dave erin frank grace heidi ivan judy),
             map { sprintf 'w%02d', $_ } 1 .. 20);

{
    my ($st, $cfg) = mock(POST => '/_admin/config', {
        interval => 1,
        users    => \@USERS,
        clients  => { 'ping-client' => {
            callback => "http://127.0.0.1:$port/_ciba/ping" } },
    });
    BAIL_OUT("mock config: $st") unless $st == 200;
}


# ---- nginx -------------------------------------------------------------------

my $state = warm_state();
my $basic_ping = encode_base64('ping-client:ping-secret', '');
my $basic_poll = encode_base64('poll-client:poll-secret', '');

sub protected {
    my ($path, $client, @extra) = @_;
    return <<"_EOC_" . join('', map { "            $_\n" } @extra) . <<"_EOC_";
        location = $path {
            ciba on;
            ciba_action refund;
            ciba_backchannel_endpoint /_ciba/bc-$client;
            ciba_token_endpoint /_ciba/token-$client;
            ciba_login_hint \$http_x_user;
_EOC_
            proxy_pass http://127.0.0.1:$port/backend;
        }
_EOC_
}

sub as_locations {
    my ($client, $basic) = @_;
    my $out = '';
    for (['bc', 'bc-authorize'], ['token', 'token']) {
        my ($name, $path) = @$_;
        $out .= <<"_EOC_";
        location = /_ciba/$name-$client {
            internal;
            proxy_pass http://127.0.0.1:$mport/$path;
            proxy_set_header Authorization "Basic $basic";
            proxy_read_timeout 5s;
            subrequest_output_buffer_size 16k;
        }
_EOC_
    }
    return $out;
}

$ng->write_config(
    http => <<"_EOC_",
    ciba_zone ciba:1m state=$state;
    log_format ciba '\$status \$request_method \$request_uri '
                    'decision=\$ciba_decision reason=\$ciba_reason '
                    'subject=\$ciba_subject ref=\$ciba_request_ref';
_EOC_
    server => "        access_log $acclog ciba;\n"
        . protected('/ping/refund', 'ping', 'ciba_delivery ping;')
        . protected('/pingwait/refund', 'ping', 'ciba_delivery ping;',
                    'ciba_wait 6s;')
        . protected('/wait/refund', 'poll', 'ciba_wait 6s;')
        . as_locations('ping', $basic_ping)
        . as_locations('poll', $basic_poll)
        . <<"_EOC_");
        location = /_ciba/ping {
            ciba_callback;
        }

        location = /backend {
            return 200 "upstream ran \$request_uri\\n";
        }

        location = /status {
            stub_status;
        }
_EOC_

$ng->start or BAIL_OUT('nginx: ' . $ng->error);


# ---- helpers -----------------------------------------------------------------

my $BODY = '{"reason":"duplicate charge"}';

sub uri_of { my ($loc, $order) = @_; return "/$loc/refund?order=$order&amount=10" }

# req($location, $user, $order, handle => $h): the answer, decoded
sub req {
    my ($loc, $user, $order, %o) = @_;
    my @h = ('X-User' => $user, 'Content-Type' => 'application/json');
    push @h, 'Approval-Handle' => $o{handle} if $o{handle};
    my $t = time;
    my ($st, $hd, $body) = $ng->request('POST', uri_of($loc, $order),
                                        headers => \@h, body => $BODY,
                                        timeout => $o{timeout} // 20);
    my $json = eval { $JSON->decode($body) };
    return { status => $st, headers => $hd, body => $body, json => $json,
             elapsed => time - $t };
}

sub json_answer {
    my ($r, $status, $error, $reason, $name) = @_;
    is $r->{status}, $status, "$name: status $status";
    is $r->{headers}{'content-type'}, 'application/json', "$name: JSON";
    is $r->{headers}{'cache-control'}, 'no-store', "$name: no-store";
    is $r->{json}{error}, $error, "$name: error $error";
    if (ref $reason) {
        like $r->{json}{reason}, $reason, "$name: reason";
    } elsif (defined $reason) {
        is $r->{json}{reason}, $reason, "$name: reason $reason";
    }
    is $r->{json}{action}, 'refund', "$name: action";
}

sub pending_ok {
    my ($r, $reason, $name, $interval) = @_;
    json_answer($r, 401, 'approval_pending', $reason, $name);
    is $r->{headers}{'www-authenticate'},
        'Approval realm="ciba", error="approval_pending"',
        "$name: WWW-Authenticate";
    like $r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
        "$name: Retry-After";
    like $r->{json}{approval_handle} // '', qr/^h1\.[A-Za-z0-9_-]+$/,
        "$name: approval_handle";
    if (defined $interval) {
        is $r->{json}{interval}, $interval, "$name: interval $interval";
    } else {
        like $r->{json}{interval} // '', qr/^[1-9]\d*$/, "$name: interval";
    }
    ok(($r->{json}{expires_in} // 0) > 200
       && $r->{json}{expires_in} <= 300, "$name: expires_in")
        or diag "expires_in: " . ($r->{json}{expires_in} // 'none');
    is $r->{json}{binding_message}, 'refund', "$name: binding_message";
}

sub passed_ok {
    my ($r, $loc, $order, $name) = @_;
    is $r->{status}, 200, "$name: 200" or diag $r->{body};
    is $r->{body}, "upstream ran /backend?order=$order&amount=10\n",
        "$name: from the upstream";
}

# the decision lines (error log, since $off) of the requests to a URI
sub decisions {
    my ($off, $loc, $order) = @_;
    my $uri = uri_of($loc, $order);
    return grep { /ciba: decision=/ && /request: "POST \Q$uri\E HTTP/ }
           split /^/, $ng->log_since($off);
}

sub one_decision {
    my ($off, $loc, $order, $decision, $reason, $user, $name) = @_;
    my @d = decisions($off, $loc, $order);
    is scalar @d, 1, "$name: one decision logged" or diag @d;
    like $d[0] // '', qr/ciba: decision=\Q$decision\E reason=$reason /,
        "$name: decision=$decision";
    like $d[0] // '', qr/ subject="\Q$user\E" /, "$name: subject $user";
    like $d[0] // '', qr/ request_ref=[A-Za-z0-9_-]{16}(?![A-Za-z0-9_-])/,
        "$name: request_ref";
}

sub acc_offset { return -s $acclog // 0 }

# access log lines since $off for a URI (waits a little: the log phase
# runs after the answer is sent)
sub access_lines {
    my ($off, $loc, $order, $want) = @_;
    my $uri = uri_of($loc, $order);
    my @l;
    for (1 .. 40) {
        open my $in, '<', $acclog or return ();
        seek $in, $off, 0;
        @l = grep { / POST \Q$uri\E decision=/ } <$in>;
        last if @l >= ($want // 1);
        sleep 0.05;
    }
    return @l;
}

# runs $code in a child after $delay seconds; the child's exit status is
# 0 when $code returned true
sub later {
    my ($delay, $code) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    sleep $delay;
    my $ok = eval { $code->() };
    POSIX::_exit($ok ? 0 : 1);
}

sub child_ok {
    my ($pid, $name) = @_;
    waitpid $pid, 0;
    is $? >> 8, 0, $name;
}

sub decide_in_child {
    my ($what, $user, $client, %o) = @_;
    my $expect_ping = delete $o{expect_ping};
    my $ht = HTTP::Tiny->new(timeout => 15, keep_alive => 0);
    my $res = $ht->request('POST', "$MOCK/_admin/$what", {
        headers => { 'Content-Type' => 'application/json' },
        content => $JSON->encode({ login_hint => $user,
                                   client_id => $client, %o }) });
    return 0 unless $res->{status} == 200;
    my $j = $JSON->decode($res->{content});
    return !$expect_ping || ($j->{notification}{status} // 0) == 204;
}

# a ping sent straight to the callback location
sub ping {
    my (%o) = @_;
    my @h = @{ $o{headers} || [] };
    push @h, 'Authorization' => $o{auth} if defined $o{auth};
    push @h, 'Content-Type' => 'application/json';
    my ($st, $hd, $body) = $ng->request($o{method} // 'POST', '/_ciba/ping',
                                        headers => \@h, body => $o{body});
    return { status => $st, headers => $hd, body => $body };
}

sub ping_refused {
    my ($r, $status, $name) = @_;
    is $r->{status}, $status, "$name: $status";
    if ($status == 401) {
        is $r->{headers}{'www-authenticate'}, 'Bearer error="invalid_token"',
            "$name: WWW-Authenticate";
        is $r->{body}, qq({"error":"invalid_token"}\n), "$name: body";
    } elsif ($status == 400) {
        is $r->{body}, qq({"error":"invalid_request"}\n), "$name: body";
        ok !exists $r->{headers}{'www-authenticate'},
            "$name: no WWW-Authenticate";
    }
}

# a raw request on a socket of its own (chunked bodies, disconnects)
sub raw_connect {
    my ($raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "connect: $!";
    print $s $raw;
    return $s;
}

sub raw_answer {
    my ($s, $timeout) = @_;
    my $out = '';
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm($timeout // 10);
        while (sysread $s, my $buf, 65536) {
            $out .= $buf;
        }
        alarm 0;
    };
    close $s;
    my ($st, $hd, $body) = CibaNginx::_parse($out);
    return { status => $st, headers => $hd, body => $body };
}

sub held_request {
    my ($loc, $user, $order) = @_;
    return raw_connect("POST " . uri_of($loc, $order) . " HTTP/1.1\r\n"
                       . "Host: localhost\r\nConnection: close\r\n"
                       . "X-User: $user\r\nContent-Type: application/json\r\n"
                       . "Content-Length: " . length($BODY) . "\r\n\r\n"
                       . $BODY);
}

my (@notification_tokens, @handles, @auth_req_ids);


# ---- the safety net, started first -------------------------------------------
# An approval whose ping never comes (notify: false) is still fetched by a
# poll, max(6 * interval, 30) = 30 s after the backchannel request; checked
# at the end of the file, the rest running meanwhile.

my ($carol_id, $carol_t);
{
    my $off = $ng->log_offset;
    my $r = req('ping', 'carol', 's1');
    $carol_t = time;
    pending_ok($r, 'asked', 'safety net: first request');
    push @handles, $r->{json}{approval_handle};
    my @a = auths_for('carol', 'ping-client');
    is scalar @a, 1, 'safety net: one backchannel request';
    $carol_id = $a[0]{auth_req_id};
    push @auth_req_ids, $carol_id;
    push @notification_tokens, $a[0]{client_notification_token};

    my ($st, $ap) = mock(POST => '/_admin/approve',
                         { auth_req_id => $carol_id, notify => JSON::PP::false });
    is $st, 200, 'safety net: approved without a ping';
    ok !$ap->{notified} && !defined $ap->{notification},
        'safety net: no ping sent';
    one_decision($off, 'ping', 's1', 'pending', 'asked', 'carol',
                 'safety net: first request');
}


# ---- ping mode ---------------------------------------------------------------

my ($alice_id, $alice_cnt);

subtest 'ping: no token request before the ping, one after' => sub {
    my $off = $ng->log_offset;

    my $r = req('ping', 'alice', 'p1');
    pending_ok($r, 'asked', 'first request', 1);
    my $h = $r->{json}{approval_handle};
    push @handles, $h;
    one_decision($off, 'ping', 'p1', 'pending', 'asked', 'alice',
                 'first request');

    my @bc = bc_reqs('alice');
    is scalar @bc, 1, 'one backchannel request';
    $alice_cnt = $bc[0]{form}{client_notification_token} // '';
    like $alice_cnt, qr/^[A-Za-z0-9_-]{43}$/,
        'client_notification_token: 43 base64url characters';
    is length(decode_base64url($alice_cnt)), 32, '... that is 256 bits';
    is $bc[0]{client_auth}, 'client_secret_basic', 'client_secret_basic';
    is $bc[0]{client_id}, 'ping-client', 'as the ping client';
    push @notification_tokens, $alice_cnt;

    my @a = auths_for('alice', 'ping-client');
    $alice_id = $a[0]{auth_req_id};
    push @auth_req_ids, $alice_id;
    is $a[0]{client_notification_token}, $alice_cnt,
        'the mock kept that token';

    for my $round ('at once', 'after the interval') {
        sleep 1.6 if $round ne 'at once';
        $off = $ng->log_offset;
        $r = req('ping', 'alice', 'p1');
        pending_ok($r, 'not_yet', "bare retry $round");
        is $r->{json}{approval_handle}, $h, "bare retry $round: same handle";
        # a ping may come any time: the agent is told to retry at the
        # AS's interval, not at the safety net's
        ok $r->{headers}{'retry-after'} >= 1
            && $r->{headers}{'retry-after'} <= 2,
            "bare retry $round: Retry-After is the interval"
            or diag "Retry-After: $r->{headers}{'retry-after'}";
        one_decision($off, 'ping', 'p1', 'pending', 'not_yet', 'alice',
                     "bare retry $round");

        my $bare_interval = $r->{json}{interval} // 0;
        $r = req('ping', 'alice', 'p1', handle => $h);
        pending_ok($r, 'not_yet', "retry with the handle $round");
        is $r->{json}{interval}, $bare_interval,
            "the same interval with or without the handle ($round)";
        is $bare_interval, 1, "the AS's interval ($round)";
        is scalar(token_reqs($alice_id)), 0,
            "no token request before the ping ($round)";
    }

    $off = $ng->log_offset;
    my ($st, $ap) = mock(POST => '/_admin/approve',
                         { login_hint => 'alice', client_id => 'ping-client' });
    is $st, 200, 'approved at the mock';
    ok $ap->{notified}, 'the mock pinged';
    is $ap->{notification}{status}, 204, 'nginx answered the ping 204';
    is $ap->{notification}{body}, '', 'with no body';
    is $ap->{notification}{sent}{headers}{Authorization}, "Bearer $alice_cnt",
        'the ping carried the notification token';
    like $ng->log_since($off), qr/ciba: ping received/,
        'the ping is logged';
    is scalar(token_reqs($alice_id)), 0, 'the ping alone asks nothing';

    $off = $ng->log_offset;
    $r = req('ping', 'alice', 'p1', handle => $h);
    passed_ok($r, 'ping', 'p1', 'retry after the ping');
    my @t = token_reqs($alice_id);
    is scalar @t, 1, 'exactly one token request';
    is $t[0]{status}, 200, '... answered with tokens';
    one_decision($off, 'ping', 'p1', 'approved', 'approved_by_as', 'alice',
                 'retry after the ping');
    my @acc = access_lines(0, 'ping', 'p1', 6);
    like $acc[-1] // '', qr/^200 .* decision=approved reason=approved_by_as subject=alice ref=[A-Za-z0-9_-]{16}$/,
        'access log: approved';

    $off = $ng->log_offset;
    $r = req('ping', 'alice', 'p1', handle => $h);
    json_answer($r, 403, 'approval_replayed', 'auth_req_id_replayed',
                'the handle again');
    is scalar(token_reqs($alice_id)), 1, '... without asking the AS';
    one_decision($off, 'ping', 'p1', 'replayed', 'auth_req_id_replayed',
                 'alice', 'the handle again');
};

subtest 'ping: refused pings leave the approval not ready' => sub {
    my $off = $ng->log_offset;
    my $r = req('ping', 'bob', 'p2');
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};
    push @handles, $h;
    my @a = auths_for('bob', 'ping-client');
    is scalar @a, 1, 'one backchannel request';
    my $id = $a[0]{auth_req_id};
    my $cnt = $a[0]{client_notification_token} // '';
    push @auth_req_ids, $id;
    push @notification_tokens, $cnt;
    like $cnt, qr/^[A-Za-z0-9_-]{43}$/, 'a notification token';
    isnt $cnt, $alice_cnt, 'another one than for the previous approval';

    # the AS pings with a wrong bearer token
    $off = $ng->log_offset;
    my ($st, $ap) = mock(POST => '/_admin/approve',
                         { login_hint => 'bob', client_id => 'ping-client',
                           notification_token => 'wrong' });
    is $st, 200, 'approved at the mock';
    is $ap->{notification}{status}, 401, 'the wrong ping: 401';
    is $ap->{notification}{headers}{'www-authenticate'},
        'Bearer error="invalid_token"', 'the wrong ping: WWW-Authenticate';
    is $ap->{notification}{body}, qq({"error":"invalid_token"}\n),
        'the wrong ping: body';
    like $ng->log_since($off), qr/\[warn\].*ciba: a (?:ping|notification) with a wrong (?:notification )?token or for an unknown approval was refused/,
        'the wrong ping is logged';

    $r = req('ping', 'bob', 'p2', handle => $h);
    pending_ok($r, 'not_yet', 'retry after the wrong ping');
    is scalar(token_reqs($id)), 0, 'no token request after the wrong ping';

    my $good = $JSON->encode({ auth_req_id => $id });

    ping_refused(ping(body => $good), 401, 'no Authorization');
    ping_refused(ping(auth => "Basic $basic_ping", body => $good), 401,
                 'Basic credentials');
    ping_refused(ping(auth => 'Bearer', body => $good), 401, 'Bearer alone');
    ping_refused(ping(auth => 'Bearer ', body => $good), 401,
                 'Bearer and no token');
    ping_refused(ping(auth => $cnt, body => $good), 401, 'no scheme');
    ping_refused(ping(auth => 'Bearer ' . ('A' x 43), body => $good), 401,
                 'a wrong token of the right shape');
    ping_refused(ping(auth => "Bearer ${cnt}x", body => $good), 401,
                 'the token with a byte more');
    ping_refused(ping(auth => 'Bearer ' . substr($cnt, 0, 42), body => $good),
                 401, 'the token with a byte less');
    ping_refused(ping(auth => "Bearer $alice_cnt", body => $good), 401,
                 "another approval's token");
    ping_refused(ping(auth => "Bearer $cnt",
                      body => $JSON->encode({ auth_req_id => $alice_id })),
                 401, "the token for another approval's id");
    ping_refused(ping(auth => "Bearer $cnt",
                      body => $JSON->encode({ auth_req_id => "$id-x" })),
                 401, 'an unknown auth_req_id');
    ping_refused(ping(auth => 'Bearer some-token',
                      body => '{"auth_req_id":"no-such-id"}'),
                 401, 'an unknown auth_req_id with some token');
    ping_refused(ping(body => 'not json'), 401,
                 'no Authorization and a bad body: 401 first');

    my @bad = (
        [ 'not JSON',             'not json' ],
        [ 'an empty body',        '' ],
        [ 'a JSON array',         "[$good]" ],
        [ 'a JSON string',        qq("$id") ],
        [ 'an empty object',      '{}' ],
        [ 'auth_req_id a number', '{"auth_req_id":42}' ],
        [ 'auth_req_id null',     '{"auth_req_id":null}' ],
        [ 'auth_req_id empty',    '{"auth_req_id":""}' ],
        [ 'auth_req_id twice',    qq({"auth_req_id":"$id","auth_req_id":"$id"}) ],
        [ 'truncated JSON',       substr($good, 0, -1) ],
        [ 'an auth_req_id over 1024 bytes',
          $JSON->encode({ auth_req_id => 'x' x 1025 }) ],
        [ 'a body over 4k',
          $JSON->encode({ auth_req_id => $id,
                          pad => 'p' x (4097 - length($good) - 9) }) ],
        [ 'a body of 64k',        'x' x 65536 ],
    );
    is length($bad[-2][1]), 4097, '(the body over 4k is 4097 bytes)';

    for my $b (@bad) {
        ping_refused(ping(auth => "Bearer $cnt", body => $b->[1]), 400,
                     $b->[0]);
    }

    # chunked bodies: over 4k in memory, and one large enough for a file
    for my $size (5000, 40000) {
        my $body = $JSON->encode({ auth_req_id => $id,
                                   pad => 'p' x ($size - length($good) - 9) });
        my $raw = "POST /_ciba/ping HTTP/1.1\r\nHost: localhost\r\n"
                . "Connection: close\r\nAuthorization: Bearer $cnt\r\n"
                . "Content-Type: application/json\r\n"
                . "Transfer-Encoding: chunked\r\n\r\n";
        for (my $i = 0; $i < length $body; $i += 1000) {
            my $c = substr $body, $i, 1000;
            $raw .= sprintf("%x\r\n", length $c) . "$c\r\n";
        }
        $raw .= "0\r\n\r\n";
        ping_refused(raw_answer(raw_connect($raw)), 400,
                     "a chunked body of $size bytes");
    }

    for my $m (qw(GET PUT DELETE)) {
        my $p = ping(method => $m, auth => "Bearer $cnt",
                     body => $m eq 'GET' ? undef : $good);
        is $p->{status}, 405, "$m: 405";
    }

    # the same through the mock's notification channel
    ($st, my $n) = mock(POST => '/_admin/notify', {
        auth_req_id => $id, method => 'GET',
        headers => { Authorization => "Bearer $cnt" } });
    is $n->{status}, 405, "GET from the mock: 405";
    ($st, $n) = mock(POST => '/_admin/notify', {
        auth_req_id => $id, json => { auth_req_id => $id } });
    is $n->{status}, 401, 'no Authorization from the mock: 401';
    ($st, $n) = mock(POST => '/_admin/notify', {
        auth_req_id => $id, headers => { Authorization => "Bearer $cnt" },
        json => [ $id ] });
    is $n->{status}, 400, 'a JSON array from the mock: 400';

    $off = $ng->log_offset;
    $r = req('ping', 'bob', 'p2', handle => $h);
    pending_ok($r, 'not_yet', 'retry after all the refused pings');
    $r = req('ping', 'bob', 'p2');
    pending_ok($r, 'not_yet', 'bare retry after all the refused pings');
    is scalar(token_reqs($id)), 0, 'still no token request';
    unlike $ng->log_since(0), qr/\[(?:alert|crit|emerg)\]/,
        'no [alert] or [crit] so far';

    # now the right ping
    ($st, $n) = mock(POST => '/_admin/notify', {
        auth_req_id => $id, headers => { Authorization => "Bearer $cnt" },
        json => { auth_req_id => $id } });
    is $n->{status}, 204, 'the right ping: 204';

    $off = $ng->log_offset;
    $r = req('ping', 'bob', 'p2');
    passed_ok($r, 'ping', 'p2', 'bare retry after the right ping');
    is scalar(token_reqs($id)), 1, 'exactly one token request';
    one_decision($off, 'ping', 'p2', 'approved', 'approved_by_as', 'bob',
                 'bare retry after the right ping');
    is scalar(bc_reqs('bob')), 1, 'one backchannel request in all';
};

subtest 'ping: a stale ping does not make a newer approval ready' => sub {
    # alice's approval p1 was used; the same request asks anew, under the
    # same (subject, digest), with a new auth_req_id and token
    my $r = req('ping', 'alice', 'p1');
    pending_ok($r, 'asked', 'the same request again: a new approval');
    push @handles, $r->{json}{approval_handle};
    my @a = auths_for('alice', 'ping-client');
    is scalar @a, 2, 'a second backchannel request';
    my $id2 = $a[1]{auth_req_id};
    push @auth_req_ids, $id2;
    push @notification_tokens, $a[1]{client_notification_token};
    isnt $a[1]{client_notification_token}, $alice_cnt, 'a new token';

    # a ping of the first approval (its id, its token), once more
    my $p = ping(auth => "Bearer $alice_cnt",
                 body => $JSON->encode({ auth_req_id => $alice_id }));
    # answered 204 or 401: a repeated ping of an approval that is over
    # may be acknowledged; it must not act on another approval
    like $p->{status} // '', qr/^(?:204|401)$/,
        'a ping for the redeemed approval: 204 or 401';
    diag "a ping for a redeemed approval: $p->{status}"
        if ($p->{status} // 0) != 401;

    $r = req('ping', 'alice', 'p1', handle => $r->{json}{approval_handle});
    pending_ok($r, undef, 'retry');
    is scalar(token_reqs($id2)), 0,
        'no token request for the new approval';
    is $r->{json}{reason}, 'not_yet', 'retry: not_yet';
};

subtest 'ping and wait: the ping ends the wait' => sub {
    my $off = $ng->log_offset;
    my $kid = later(2, sub {
        decide_in_child('approve', 'dave', 'ping-client', expect_ping => 1)
    });
    my $r = req('pingwait', 'dave', 'pw1');
    child_ok($kid, 'approved at the mock after 2 s, pinged: 204');
    passed_ok($r, 'pingwait', 'pw1', 'held request');
    my @a = auths_for('dave', 'ping-client');
    push @auth_req_ids, map { $_->{auth_req_id} } @a;
    push @notification_tokens, map { $_->{client_notification_token} } @a;
    ok $r->{elapsed} < 4.5, 'it passed soon after the ping'
        or diag sprintf 'after %.1f s', $r->{elapsed};
    ok $r->{elapsed} < 8, 'it passed within the wait'
        or diag sprintf 'after %.1f s', $r->{elapsed};
    is scalar(token_reqs($a[0]{auth_req_id})), 1, 'one token request';
    one_decision($off, 'pingwait', 'pw1', 'approved', 'approved_by_as',
                 'dave', 'held request');
};


# ---- wait mode ---------------------------------------------------------------

my $slow_downs_before = grep { ($_->{answer}{error} // '') eq 'slow_down' }
    @{ mock(GET => '/_admin/requests?path=/token')->{requests} };

subtest 'wait: approved while held' => sub {
    my $off = $ng->log_offset;
    my $kid = later(2, sub {
        decide_in_child('approve', 'erin', 'poll-client')
    });
    my $r = req('wait', 'erin', 'w1');
    child_ok($kid, 'approved at the mock after 2 s');
    passed_ok($r, 'wait', 'w1', 'held request');
    ok $r->{elapsed} >= 1.8 && $r->{elapsed} < 5.5,
        'it passed at the first poll after the approval'
        or diag sprintf 'after %.1f s', $r->{elapsed};

    is scalar(bc_reqs('erin')), 1, 'one backchannel request';
    my @a = auths_for('erin', 'poll-client');
    push @auth_req_ids, $a[0]{auth_req_id};
    my @t = token_reqs($a[0]{auth_req_id});
    ok @t >= 1 && @t <= 4, 'one token request per interval, about'
        or diag scalar(@t) . ' token requests';
    is $t[-1]{status}, 200, 'the last one got the tokens';
    is scalar(grep { ($_->{answer}{error} // '') eq 'authorization_pending' }
              @t), @t - 1, 'the others: authorization_pending';
    my @gaps = map { $t[$_]{time} - $t[$_ - 1]{time} } 1 .. $#t;
    # paced in whole seconds, with one second more so that a poll is never
    # early (no slow_down): between 1 and 2 s apart for an interval of 1 s
    ok !grep({ $_ < 950 || $_ > 2600 } @gaps),
        'polled at the interval, never early' or diag "gaps (ms): @gaps";
    diag "wait mode: token requests after @{[ map { $_->{time} - $t[0]{time} } @t ]} ms";
    one_decision($off, 'wait', 'w1', 'approved', 'approved_by_as', 'erin',
                 'held request');
    my @acc = access_lines(0, 'wait', 'w1');
    like $acc[0] // '', qr/^200 .* decision=approved reason=approved_by_as subject=erin /,
        'access log: 200 approved';
};

subtest 'wait: the wait elapses' => sub {
    my $off = $ng->log_offset;
    my $r = req('wait', 'frank', 'w2');
    pending_ok($r, qr/^(?:authorization_pending|not_yet)$/,
               'held, never decided');
    push @handles, $r->{json}{approval_handle};
    ok $r->{elapsed} >= 6 && $r->{elapsed} < 7.5,
        'answered when the wait (6 s) elapsed, not before (milliseconds)'
        or diag sprintf 'after %.3f s', $r->{elapsed};
    is scalar(bc_reqs('frank')), 1, 'one backchannel request';
    my @a = auths_for('frank', 'poll-client');
    push @auth_req_ids, $a[0]{auth_req_id};
    my @t = token_reqs($a[0]{auth_req_id});
    ok @t >= 2 && @t <= 7, 'one token request per interval, about'
        or diag scalar(@t) . ' token requests';
    my @gaps = map { $t[$_]{time} - $t[$_ - 1]{time} } 1 .. $#t;
    ok !grep({ $_ < 950 || $_ > 2600 } @gaps),
        'polled at the interval, never early' or diag "gaps (ms): @gaps";
    my @d = decisions($off, 'wait', 'w2');
    is scalar @d, 1, 'one decision logged for the held request'
        or diag @d;
    like $d[0] // '', qr/decision=pending reason=(?:authorization_pending|not_yet) .* subject="frank"/,
        'decision=pending';
    my @acc = access_lines(0, 'wait', 'w2');
    like $acc[0] // '', qr/^401 .* decision=pending /, 'access log: 401';
};

subtest 'wait: denied while held' => sub {
    my $off = $ng->log_offset;
    my $kid = later(2, sub {
        decide_in_child('deny', 'grace', 'poll-client')
    });
    my $r = req('wait', 'grace', 'w3');
    child_ok($kid, 'denied at the mock after 2 s');
    json_answer($r, 403, 'approval_denied', 'access_denied', 'held request');
    ok !exists $r->{headers}{'www-authenticate'}, 'no WWW-Authenticate';
    ok !exists $r->{json}{approval_handle}, 'no handle';
    ok $r->{elapsed} >= 1.8 && $r->{elapsed} < 5.5,
        'denied at the next poll' or diag sprintf 'after %.1f s',
                                                  $r->{elapsed};
    my @a = auths_for('grace', 'poll-client');
    push @auth_req_ids, $a[0]{auth_req_id};
    one_decision($off, 'wait', 'w3', 'denied', 'access_denied', 'grace',
                 'held request');

    my $n = () = token_reqs($a[0]{auth_req_id});
    $r = req('wait', 'grace', 'w3');
    json_answer($r, 403, 'approval_denied', 'access_denied',
                'the same request again');
    ok $r->{elapsed} < 1.5, '... at once';
    is scalar(token_reqs($a[0]{auth_req_id})), $n, '... without asking';
};

sub active_connections {
    my ($st, $hd, $body) = $ng->request('GET', '/status');
    return $body =~ /Active connections:\s*(\d+)/ ? $1 : -1;
}

subtest 'wait: the client goes away while held' => sub {
    my $off = $ng->log_offset;
    my $aoff = acc_offset();
    my $s = held_request('wait', 'heidi', 'w4');
    sleep 1.6;
    is scalar(bc_reqs('heidi')), 1, 'asked the AS';
    my @a = auths_for('heidi', 'poll-client');
    my $id = $a[0]{auth_req_id};
    push @auth_req_ids, $id;
    close $s;

    my @acc = access_lines($aoff, 'wait', 'w4');
    like $acc[0] // '', qr/^499 POST /, 'access log: 499';
    like $acc[0] // '', qr/ decision=- /, 'no decision';
    is scalar(decisions($off, 'wait', 'w4')), 0, 'no decision line';

    my $n = () = token_reqs($id);
    sleep 1.5;
    is scalar(token_reqs($id)), $n, 'the polls stopped';
    my $active;
    for (1 .. 20) {
        $active = active_connections();
        last if $active == 1;
        sleep 0.1;
    }
    is $active, 1, 'no connection left but the status request';
    unlike $ng->log_since($off), qr/\[(?:alert|crit|emerg)\]/,
        'no [alert] or [crit]';

    # the same request again continues the same approval
    $off = $ng->log_offset;
    my $kid = later(1, sub {
        decide_in_child('approve', 'heidi', 'poll-client')
    });
    my $r = req('wait', 'heidi', 'w4');
    child_ok($kid, 'approved at the mock');
    passed_ok($r, 'wait', 'w4', 'the same request again');
    ok $r->{elapsed} < 4.5, '... soon after the approval'
        or diag sprintf 'after %.1f s', $r->{elapsed};
    is scalar(bc_reqs('heidi')), 1, 'no new backchannel request';
    is scalar(auths_for('heidi')), 1, '(one auth request at the mock)';
    one_decision($off, 'wait', 'w4', 'approved', 'approved_by_as', 'heidi',
                 'the same request again');
};

subtest 'wait: the client goes away during a token request' => sub {
    # the first token request is answered after 2 s; the client leaves
    # meanwhile, while the module waits for the AS, not on its timer: the
    # token request goes on (the AS redeems when it answers), its answer is
    # taken in, and the request ends then
    my ($st) = mock(POST => '/_admin/script', {
        endpoint => '/token', responses => [ { delay_ms => 2000 } ] });
    is $st, 200, 'mock: the next token answer is 2 s late';

    my $off = $ng->log_offset;
    my $aoff = acc_offset();
    my $t = time;
    my $s = held_request('wait', 'ivan', 'w5');
    sleep 0.5;
    my @a = auths_for('ivan', 'poll-client');
    my $id = $a[0]{auth_req_id};
    push @auth_req_ids, $id;
    sleep 0.1 while !token_reqs($id) && time - $t < 4;
    sleep 0.3;
    is scalar(token_reqs($id)), 1, 'a token request is in flight';
    my $left = time;
    close $s;

    my @acc = access_lines($aoff, 'wait', 'w5');
    my $gone = time - $left;
    like $acc[0] // '', qr/^499 POST .* decision=- /,
        'access log: 499, no decision';
    ok $gone < 2.5, 'the request ended when the AS answered'
        or diag sprintf 'after %.1f s', $gone;
    like $ng->log_since($off), qr/\[info\] .*ciba: the client closed the connection while the token request was in flight/,
        'the client\'s leaving was noted';
    unlike $ng->log_since($off), qr/client prematurely closed connection.*subrequest: "\/_ciba\/token-poll"/,
        'the token subrequest was not cut';

    # the late token answer, an approval, and a poll time later: nothing
    my $nap = $left + 1.6 - time;
    sleep $nap if $nap > 0;
    mock(POST => '/_admin/approve', { auth_req_id => $id });
    sleep 3;
    my @up = grep { m{ /backend\?order=w5&} } do {
        open my $in, '<', $acclog; seek $in, $aoff, 0; <$in>
    };
    is scalar(@up), 0, 'the upstream never saw it';
    is scalar(token_reqs($id)), 1, 'no token request after the disconnect';
    is scalar(decisions($off, 'wait', 'w5')), 0, 'no decision line';
    unlike $ng->log_since($off), qr/\[(?:alert|crit|emerg)\]/,
        'no [alert] or [crit]';
};

subtest 'the client goes away during the backchannel request' => sub {
    # a request that ends while the AS is asked gives up its placeholder:
    # the same request then asks at once, instead of "requesting"
    my ($st) = mock(POST => '/_admin/script', {
        endpoint => '/bc-authorize', responses => [ { delay_ms => 1500 } ] });
    is $st, 200, 'mock: the next backchannel answer is 1.5 s late';

    my $off = $ng->log_offset;
    my $aoff = acc_offset();
    my $s = held_request('ping', 'judy', 'g1');
    sleep 0.5;
    is scalar(bc_reqs('judy')), 1, 'the backchannel request is in flight';
    close $s;
    my @acc = access_lines($aoff, 'ping', 'g1');
    like $acc[0] // '', qr/^499 POST /, 'access log: 499';

    my $r = req('ping', 'judy', 'g1');
    pending_ok($r, 'asked', 'the same request again asks anew');
    push @handles, $r->{json}{approval_handle};
    my @bc = bc_reqs('judy');
    is scalar @bc, 2, 'a second backchannel request';
    push @notification_tokens, map { $_->{form}{client_notification_token} }
                               @bc;
    push @auth_req_ids, map { $_->{auth_req_id} } auths_for('judy');
    one_decision($off, 'ping', 'g1', 'pending', 'asked', 'judy',
                 'the same request again');
    unlike $ng->log_since($off), qr/\[(?:alert|crit|emerg)\]/,
        'no [alert] or [crit]';
};

subtest 'wait: 20 subjects held at once' => sub {
    my @users = map { sprintf 'w%02d', $_ } 1 .. 20;
    my %want = map { ($_ => 1) } @users;
    my $off = $ng->log_offset;

    my $kid = later(0.5, sub {
        my $ht = HTTP::Tiny->new(timeout => 15, keep_alive => 0);
        my %ids;
        my $deadline = time + 10;
        while (keys %ids < 20 && time < $deadline) {
            my $res = $ht->get("$MOCK/_admin/pending");
            for my $p (@{ $JSON->decode($res->{content})->{pending} }) {
                $ids{ $p->{login_hint} } = $p->{auth_req_id}
                    if $want{ $p->{login_hint} }
                       && $p->{client_id} eq 'poll-client';
            }
            sleep 0.1;
        }
        return 0 unless keys %ids == 20;
        sleep 0.5;
        for my $u (sort keys %ids) {
            my $res = $ht->request('POST', "$MOCK/_admin/approve", {
                headers => { 'Content-Type' => 'application/json' },
                content => $JSON->encode({ auth_req_id => $ids{$u} }) });
            return 0 unless $res->{status} == 200;
        }
        return 1;
    });

    my $t = time;
    my @res = $ng->parallel([ map {
        +{ method => 'POST', uri => uri_of('wait', "c$_"),
          headers => [ 'X-User' => $users[$_ - 1],
                       'Content-Type' => 'application/json' ],
          body => $BODY }
    } 1 .. 20 ], timeout => 20);
    my $elapsed = time - $t;
    child_ok($kid, 'all 20 approved at the mock while held');

    my $ok = 0;
    for my $i (1 .. 20) {
        my ($st, $hd, $body) = @{ $res[$i - 1] };
        $ok++ if ($st // 0) == 200
                 && $body eq "upstream ran /backend?order=c$i&amount=10\n";
    }
    is $ok, 20, 'all 20 passed, each with its own request';
    ok $elapsed < 6.5, 'within the wait' or diag sprintf '%.1f s', $elapsed;

    my @bc = grep { $want{ $_->{form}{login_hint} // '' } }
        @{ mock(GET => '/_admin/requests?path=/bc-authorize')->{requests} };
    is scalar @bc, 20, 'one backchannel request each';
    my %seen = map { ($_->{form}{login_hint} => 1) } @bc;
    is scalar(keys %seen), 20, '... for 20 subjects';

    my $n = 0;
    for my $i (1 .. 20) {
        my @d = decisions($off, 'wait', "c$i");
        my $u = $users[$i - 1];
        $n++ if @d == 1 && $d[0] =~ /decision=approved reason=approved_by_as/
                && $d[0] =~ /subject="\Q$u\E"/;
    }
    is $n, 20, 'one decision=approved line each, with its subject';
    push @auth_req_ids, map { $_->{auth_req_id} }
        map { auths_for($_, 'poll-client') } @users;
};

{
    my @tok = @{ mock(GET => '/_admin/requests?path=/token')->{requests} };
    my $slow = grep { ($_->{answer}{error} // '') eq 'slow_down' } @tok;
    is $slow - $slow_downs_before, 0, 'wait mode: the AS never said slow_down';
}


# ---- the safety net, checked -------------------------------------------------

subtest 'ping: the safety net polls after 30 s' => sub {
    is scalar(token_reqs($carol_id)), 0, 'no token request so far';
    my $r;
    if (time - $carol_t < 28) {
        $r = req('ping', 'carol', 's1');
        pending_ok($r, 'not_yet', sprintf 'after %.0f s', time - $carol_t);
        is scalar(token_reqs($carol_id)), 0, '... without asking the AS';
    }
    my $left = $carol_t + 32 - time;
    sleep $left if $left > 0;
    my $off = $ng->log_offset;
    $r = req('ping', 'carol', 's1');
    passed_ok($r, 'ping', 's1', 'after 32 s');
    is scalar(token_reqs($carol_id)), 1, 'one token request';
    one_decision($off, 'ping', 's1', 'approved', 'approved_by_as', 'carol',
                 'after 32 s');
};


# ---- logs --------------------------------------------------------------------

{
    my $log = $ng->error_log;
    my $acc = do { open my $in, '<', $acclog; local $/; <$in> // '' };

    @notification_tokens = grep { defined && length } @notification_tokens;
    ok @notification_tokens >= 5, 'notification tokens collected: '
                                  . scalar @notification_tokens;
    my %u = map { ($_ => 1) } @notification_tokens;
    is scalar(keys %u), scalar @notification_tokens,
        'every approval had a token of its own';

    is scalar(grep { index($log, $_) >= 0 || index($acc, $_) >= 0 }
              @notification_tokens), 0,
        'no notification token in the logs';
    is scalar(grep { defined && length && index($log, $_) >= 0 } @handles),
        0, 'no handle in the error log';
    is scalar(grep { defined && length && index($log, $_) >= 0 }
              @auth_req_ids), 0, 'no auth_req_id in the error log';
    unlike $log, qr/\[(?:alert|crit|emerg)\]/, 'no [alert], [crit], [emerg]';
    is $ng->crash_reports, '', 'no crash';
}

ok $ng->stop, 'nginx stops';
diag sprintf 'ran for %.0f s', time - $T0;

done_testing;
