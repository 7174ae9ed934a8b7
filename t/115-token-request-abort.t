# A client that goes away while its token request is in flight (issue 9,
# section 3): the AS redeems the auth_req_id when it answers, so the
# answer must not be lost.  The token request runs on (a background
# subrequest, its upstream does not see the client's connection), its
# tokens are kept for the approval, and the next retry with the handle
# passes once, without asking the AS again.  Over HTTP/1.1 (the client
# closes its connection) and HTTP/2 (curl gives up and closes it); a
# denial answered after the client left is remembered too.
#
# Plain Perl: the mock AS must answer late while clients come and go.
# Ports: nginx on TEST_NGINX_SERVER_PORT (HTTP/1.1), the mock on port + 1,
# HTTP/2 (h2c, prior knowledge) on port + 2.

use strict;
use warnings;

use lib 't';

use Test::More;

use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use CibaLoad qw(mock_up as as_reqs plan_skip wait_until health_ok stop_ok);
use MockAS ();

plan_skip('timing-based (clients that leave during a token request)');

my $CURL = `command -v curl 2>/dev/null` // '';
chomp $CURL;
my $H2 = $CURL && `$CURL --version 2>/dev/null` =~ /\bHTTP2\b/;

my $ng = CibaNginx->new(workers => 1);
my $port = $ng->port;
my $h2port = $port + 2;
my $state = warm_state();
my $BODY = '{"amount":10}';

my $mport = mock_up($ng, users => [ qw(u1 u2 u3) ]);

$ng->write_config(
    http   => <<"_EOC_",
    ciba_zone abort:1m state=$state;
    log_format ciba '\$status \$request_method \$request_uri '
                    'decision=\$ciba_decision reason=\$ciba_reason';
_EOC_
    server => "        listen 127.0.0.1:$h2port http2;\n"
              . "        access_log logs/ciba-access.log ciba;\n"
              . "        ciba_action refund;\n\n"
              . MockAS::locations($mport, 'proxy_read_timeout 10s;')
              . MockAS::ciba_location('= /ciba/refund', $port)
              . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran \$arg_order\\n";
        }
_EOC_

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);
my @workers = $ng->worker_pids;


sub req {
    my ($user, $order, $handle) = @_;
    my ($status, $headers, $body) = $ng->request(
        'POST', "/ciba/refund?order=$order",
        headers => [ 'X-User' => $user, 'Content-Type' => 'application/json',
                     ($handle ? ('Approval-Handle' => $handle) : ()) ],
        body => $BODY);
    return { status => $status // 0, headers => $headers, body => $body // '',
             json => eval { JSON::PP::decode_json($body) } || {} };
}

sub auth_req_id {
    my ($user) = @_;
    my ($bc) = grep { ($_->{form}{login_hint} // '') eq $user }
               as_reqs('/bc-authorize');
    return $bc ? $bc->{answer}{auth_req_id} : undef;
}

sub token_reqs {
    my ($id) = @_;
    return grep { ($_->{form}{auth_req_id} // '') eq $id } as_reqs('/token');
}

# the request with the handle over HTTP/1.1; the client closes its
# connection after $leave seconds
sub leave_h1 {
    my ($user, $order, $handle, $leave) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!";
    print $s "POST /ciba/refund?order=$order HTTP/1.1\r\nHost: localhost\r\n"
           . "X-User: $user\r\nApproval-Handle: $handle\r\n"
           . "Content-Type: application/json\r\n"
           . 'Content-Length: ' . length($BODY) . "\r\n\r\n$BODY";
    sleep $leave;
    close $s;
}

# the same over HTTP/2 (h2c): curl gives up after $leave seconds
sub leave_h2 {
    my ($user, $order, $handle, $leave) = @_;
    system($CURL, '-s', '-o', '/dev/null', '--http2-prior-knowledge',
           '--max-time', $leave, '-X', 'POST', '-H', "X-User: $user",
           '-H', "Approval-Handle: $handle",
           '-H', 'Content-Type: application/json', '--data-binary', $BODY,
           "http://127.0.0.1:$h2port/ciba/refund?order=$order");
}

# asked, decided at the AS ("approve" or "deny"), the token endpoint's next
# answer 1.5 s late; the client leaves 0.5 s into the token request
sub leave_during_token_request {
    my ($user, $order, $decide, $leave) = @_;

    my $r = req($user, $order);
    is($r->{json}{reason}, 'asked', "$user: asked");
    my $h = $r->{json}{approval_handle};
    my $id = auth_req_id($user);
    ok($id, "$user: the AS has the auth_req_id");

    as(POST => "/_admin/$decide", { auth_req_id => $id });
    as(POST => '/_admin/script', { endpoint => '/token',
                                   responses => [ { delay_ms => 1500 } ] });

    sleep(($r->{headers}{'retry-after'} // 1) + 0.1);
    my $off = $ng->log_offset;
    $leave->($user, $order, $h, 0.5);

    wait_until(sub { $ng->log_since($off) =~ /\b499 POST .*order=$order|request_ref=|client closed/ }, 5);
    wait_until(sub { grep { $_->{status} } token_reqs($id) }, 5);
    sleep 0.3;

    my @t = token_reqs($id);
    is(scalar @t, 1, "$user: one token request");

    return ($h, $id, $off, \@t);
}

subtest 'HTTP/1.1: approved, the client leaves during the token request' => sub {
    my ($h, $id, $off, $t) = leave_during_token_request('u1', 'h1', 'approve',
                                                        \&leave_h1);
    ok($t->[0]{answer}{access_token}, 'the AS answered it with the tokens');
    my $log = $ng->log_since($off);
    like($log, qr/\[info\] .*ciba: the client closed the connection while the token request was in flight/,
         'the client leaving is noted');
    like($log, qr/\[info\] .*ciba: the client went away during the token request; the tokens are kept for the approval's next retry \(request_ref=\S{16}\)/,
         'the tokens are kept');
    unlike($log, qr/ciba: decision=/, 'no decision for the request that left');
    unlike($log, qr/\Q$id\E|eyJ[A-Za-z0-9_-]{20,}\./, 'no id or token logged');

    my $r = req('u1', 'h1', $h);
    is($r->{status}, 200, 'the retry with the handle: 200');
    is($r->{body}, "upstream ran h1\n", '... from the upstream');
    is(scalar(token_reqs($id)), 1, '... with the kept tokens (no new token request)');
    like($ng->log_since($off), qr/ciba: decision=approved reason=approved_by_as action="refund" subject="u1" /,
         '... decision approved_by_as');

    $r = req('u1', 'h1', $h);
    is($r->{status}, 403, 'used once: the next retry is 403');
    is($r->{json}{error}, 'approval_replayed', '... approval_replayed');
};

SKIP: {
    skip 'curl with HTTP/2 is needed', 1 unless $H2;

    subtest 'HTTP/2: approved, the client leaves during the token request' => sub {
        my ($h, $id, $off, $t) = leave_during_token_request('u2', 'h2', 'approve',
                                                            \&leave_h2);
        ok($t->[0]{answer}{access_token}, 'the AS answered it with the tokens');
        like($ng->log_since($off), qr/ciba: the client went away during the token request; the tokens are kept/,
             'the tokens are kept');

        my $r = req('u2', 'h2', $h);
        is($r->{status}, 200, 'the retry with the handle: 200');
        is($r->{body}, "upstream ran h2\n", '... from the upstream');
        is(scalar(token_reqs($id)), 1, '... no new token request');
    };
}

subtest 'HTTP/1.1: denied, the client leaves during the token request' => sub {
    my ($h, $id, $off, $t) = leave_during_token_request('u3', 'h3', 'deny',
                                                        \&leave_h1);
    is($t->[0]{answer}{error}, 'access_denied', 'the AS answered access_denied');
    my $r = req('u3', 'h3', $h);
    is($r->{status}, 403, 'the retry with the handle: 403');
    is($r->{json}{error}, 'approval_denied', '... approval_denied, remembered');
    is(scalar(token_reqs($id)), 1, '... without asking the AS again');
};

health_ok($ng, @workers);
stop_ok($ng, $state);

done_testing;
