# The scriptable mock AS (t/fixtures/mock-as/mock-as.mjs) the suite drives: its
# CIBA endpoints (validation, poll states, tokens verified against its JWKS),
# its admin API, every scripted fault, ping and push to a callback listener
# started here, and its command line (loopback only, --key, --verbose,
# SIGTERM).  Everything on 127.0.0.1, ports picked by the kernel.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use IO::Socket::INET;
use POSIX ();
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64 encode_base64url);
use FindBin;

my $MOCK = "$FindBin::Bin/../fixtures/mock-as/mock-as.mjs";
my $CIBA = 'urn:openid:params:grant-type:ciba';
my $ARID = 'urn:openid:params:jwt:claim:auth_req_id';

{
    my $v = `node --version 2>/dev/null` // '';
    plan skip_all => 'node is missing' if $? != 0 || $v !~ /^v(\d+)\./;
    plan skip_all => "node $v is older than 20" if $1 < 20;
}
plan skip_all => 'Crypt::JWT is missing' unless eval { require Crypt::JWT; 1 };
Crypt::JWT->import('decode_jwt');

my $JSON = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);
my $cbfile = "$dir/callbacks.jsonl";
my (@kill, @pipes, $PORT, $BASE);

END {
    local $?;
    for my $pid (@kill) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}


# ---- the processes -------------------------------------------------------

# a tiny HTTP listener: appends {method, path, headers, body} per request to
# $cbfile, answers 204 (500 under /cb/fail)
sub start_callback_server {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                    Proto => 'tcp', Listen => 16,
                                    ReuseAddr => 1)
        or die "callback listener: $!";
    my $port = $srv->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        for (;;) {
            my $c = $srv->accept or next;
            eval {
                local $SIG{ALRM} = sub { die "timeout\n" };
                alarm 5;
                my $line = <$c> // die "eof\n";
                $line =~ s/\r?\n\z//;
                my ($method, $path) = split / /, $line;
                my %h;
                while (my $l = <$c>) {
                    $l =~ s/\r?\n\z//;
                    last if $l eq '';
                    my ($k, $v) = split /:[ \t]*/, $l, 2;
                    $h{lc $k} = $v;
                }
                my $body = '';
                my $len = $h{'content-length'} // 0;
                while (length $body < $len) {
                    my $n = read $c, my $buf, $len - length $body;
                    last unless $n;
                    $body .= $buf;
                }
                open my $out, '>>', $cbfile or die "$cbfile: $!";
                print $out $JSON->encode({ method => $method, path => $path,
                                           headers => \%h, body => $body }),
                           "\n";
                close $out;
                my $status = $path =~ m{^/cb/fail}
                    ? '500 Internal Server Error' : '204 No Content';
                print $c "HTTP/1.1 $status\r\nContent-Length: 0\r\n"
                       . "Connection: close\r\n\r\n";
                alarm 0;
            };
            close $c;
        }
    }
    close $srv;
    push @kill, $pid;
    return $port;
}

sub callbacks {
    open my $in, '<', $cbfile or return ();
    return map { $JSON->decode($_) } <$in>;
}

# starts the mock; returns (pid, port, the stdout pipe)
sub start_mock {
    my ($stderr, @args) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        if ($stderr) {
            open STDERR, '>', $stderr or POSIX::_exit(127);
        }
        exec 'node', $MOCK, @args or POSIX::_exit(127);
    }
    push @kill, $pid;
    push @pipes, $fh;       # closing it would wait for the mock to exit
    my $line;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 10;
        $line = <$fh>;
        alarm 0;
    };
    die "mock-as did not start\n"
        unless defined $line
               && $line =~ /^mock-as listening on 127\.0\.0\.1:(\d+)$/;
    return ($pid, $1, $fh);
}


# ---- HTTP helpers --------------------------------------------------------

sub call {
    my ($method, $path, %o) = @_;
    my $http = HTTP::Tiny->new(timeout => $o{timeout} // 10, keep_alive => 0,
                               max_redirect => 0);
    my %h = %{ $o{headers} || {} };
    my $content;
    if ($o{form}) {
        my $f = $o{form};
        $f = [ map { defined $f->{$_} ? ($_ => $f->{$_}) : () } sort keys %$f ]
            if ref $f eq 'HASH';
        $content = $http->www_form_urlencode($f);
        $h{'Content-Type'} //= 'application/x-www-form-urlencoded';
    } elsif (exists $o{json}) {
        $content = $JSON->encode($o{json});
        $h{'Content-Type'} = 'application/json';
    } elsif (defined $o{body}) {
        $content = $o{body};
    }
    if ($o{basic}) {
        $h{Authorization} = 'Basic ' . encode_base64(join(':', @{ $o{basic} }), '');
    }
    my $base = $o{base} // $BASE;
    my $r = $http->request($method, "$base$path",
                           { headers => \%h,
                             defined $content ? (content => $content) : () });
    $r->{json} = eval { $JSON->decode($r->{content}) }
        if length($r->{content} // '') < 1_000_000;
    return $r;
}

# admin: GET without data, POST with; returns the response
sub adm {
    my ($what, $data) = @_;
    return call(defined $data ? 'POST' : 'GET', "/_admin/$what",
                defined $data ? (json => $data) : ());
}

sub adm_ok {
    my ($what, $data) = @_;
    my $r = adm($what, $data);
    die "admin $what: $r->{status} $r->{content}\n" if $r->{status} != 200;
    return $r->{json};
}

sub creds { my $c = shift; return ["$c-client", "$c-secret"] }

# a backchannel request as client poll|ping|push, with defaults
sub bc {
    my ($client, %f) = @_;
    my %form = (scope => 'openid', login_hint => 'alice',
                binding_message => 'Refund 5 EUR', %f);
    $form{client_notification_token} //= 'cnt-' . ('x' x 30)
        if $client ne 'poll' && !exists $f{client_notification_token};
    return call('POST', '/bc-authorize', form => \%form, basic => creds($client));
}

sub tok {
    my ($client, $id, %f) = @_;
    return call('POST', '/token', basic => creds($client),
                form => { grant_type => $CIBA, auth_req_id => $id, %f });
}

sub err_is {
    my ($r, $status, $error, $name) = @_;
    is $r->{status}, $status, "$name: status $status";
    is $r->{json} && $r->{json}{error}, $error, "$name: $error"
        or diag $r->{content};
}

my $jwks;
sub jwt {
    my ($t, %o) = @_;
    my ($h, $p) = eval {
        decode_jwt(token => $t, kid_keys => $jwks, accepted_alg => 'ES256',
                   decode_header => 1, verify_exp => 1, verify_iat => 1, %o);
    };
    return ($h, $p, $@);
}

sub at_hash {
    my $d = sha256(shift);
    return encode_base64url(substr $d, 0, 16);
}


# ---- start ---------------------------------------------------------------

my $cbport = start_callback_server();
my $CB = "http://127.0.0.1:$cbport";
my ($mock_pid, $mock_fh);
($mock_pid, $PORT, $mock_fh) = start_mock(undef, '--port', '0');
$BASE = "http://127.0.0.1:$PORT";
ok $PORT > 0, "mock listening on port $PORT";
my $t_start = time;


subtest 'command line' => sub {
    for my $bind ('0.0.0.0', '::', 'localhost', '192.0.2.1') {
        my $out = `node $MOCK --bind $bind --port 0 2>&1`;
        isnt $? >> 8, 0, "--bind $bind: refused";
        like $out, qr/refusing to bind/, "--bind $bind: says why";
    }
    my $out = `node $MOCK --port 70000 2>&1`;
    isnt $? >> 8, 0, 'bad --port refused';
    $out = `node $MOCK --frobnicate 2>&1`;
    like $out, qr/unknown argument/, 'unknown argument refused';
    $out = `node $MOCK --key /nonexistent 2>&1`;
    like $out, qr/key:/, 'missing --key file refused';
};


subtest 'discovery and jwks' => sub {
    my $r = call('GET', '/jwks');
    is $r->{status}, 200, 'jwks 200';
    $jwks = $r->{json};
    is scalar @{ $jwks->{keys} }, 1, 'one key';
    my $k = $jwks->{keys}[0];
    is_deeply [ @$k{qw(kty crv use alg)} ], [qw(EC P-256 sig ES256)],
        'EC P-256, use sig, alg ES256';
    like $k->{kid}, qr/^[\w-]{43}$/, 'kid is a thumbprint';
    ok !exists $k->{d}, 'no private part';
    my $d = call('GET', '/.well-known/openid-configuration')->{json};
    is $d->{issuer}, $BASE, 'default issuer';
    is $d->{backchannel_authentication_endpoint}, "$BASE/bc-authorize",
        'discovery names the endpoint';
    err_is call('GET', '/nowhere'), 404, 'not_found', 'unknown path';
    err_is call('GET', '/bc-authorize'), 405, 'invalid_request', 'GET bc-authorize';
};


subtest 'backchannel authentication request' => sub {
    my $r = bc('poll');
    is $r->{status}, 200, 'basic auth: 200';
    like $r->{json}{auth_req_id}, qr/^[\w-]{40,}$/, 'random auth_req_id';
    is $r->{json}{expires_in}, 120, 'expires_in 120';
    is $r->{json}{interval}, 5, 'interval 5';
    is $r->{headers}{'cache-control'}, 'no-store', 'no-store';
    like $r->{headers}{'content-type'}, qr{^application/json}, 'JSON';

    $r = call('POST', '/bc-authorize',
              form => { scope => 'openid', login_hint => 'bob',
                        client_id => 'poll-client',
                        client_secret => 'poll-secret' });
    is $r->{status}, 200, 'client_secret_post: 200';

    my $r2 = call('POST', '/bc-authorize',
                  form => { scope => 'openid', login_hint => 'bob' });
    err_is $r2, 401, 'invalid_client', 'no client authentication';
    like $r2->{headers}{'www-authenticate'}, qr/^Basic/, 'WWW-Authenticate';
    err_is call('POST', '/bc-authorize', basic => ['poll-client', 'nope'],
                form => { scope => 'openid', login_hint => 'bob' }),
        401, 'invalid_client', 'wrong secret';
    err_is call('POST', '/bc-authorize', basic => ['nobody', 'x'],
                form => { scope => 'openid', login_hint => 'bob' }),
        401, 'invalid_client', 'unknown client';
    err_is call('POST', '/bc-authorize', basic => creds('poll'),
                form => { scope => 'openid', login_hint => 'bob',
                          client_id => 'poll-client',
                          client_secret => 'poll-secret' }),
        400, 'invalid_request', 'two authentication methods';
    err_is call('POST', '/bc-authorize', basic => creds('poll'),
                headers => { 'Content-Type' => 'application/json' },
                body => '{"scope":"openid"}'),
        400, 'invalid_request', 'not a form';
    err_is call('POST', '/bc-authorize', basic => creds('poll'),
                form => [scope => 'openid', login_hint => 'bob',
                         login_hint => 'alice']),
        400, 'invalid_request', 'repeated parameter';

    err_is bc('poll', scope => 'profile'), 400, 'invalid_scope', 'no openid';
    err_is bc('poll', scope => undef), 400, 'invalid_request', 'no scope';
    err_is bc('poll', login_hint => undef), 400, 'invalid_request', 'no login_hint';
    err_is bc('poll', id_token_hint => 'x'), 400, 'invalid_request', 'two hints';
    err_is bc('poll', login_hint => 'mallory'), 400, 'unknown_user_id',
        'unknown user';
    err_is bc('ping', client_notification_token => undef), 400,
        'invalid_request', 'ping without client_notification_token';
    err_is bc('push', client_notification_token => undef), 400,
        'invalid_request', 'push without client_notification_token';
    err_is bc('poll', binding_message => 'Refund <b>5</b>'), 400,
        'invalid_binding_message', 'binding_message with < >';
    err_is bc('poll', binding_message => 'x' x 65), 400,
        'invalid_binding_message', 'binding_message of 65 characters';
    is bc('poll', binding_message => 'x' x 64)->{status}, 200,
        'binding_message of 64 characters';
    err_is bc('poll', requested_expiry => 'soon'), 400, 'invalid_request',
        'requested_expiry not a number';
    is bc('poll', requested_expiry => 30)->{json}{expires_in}, 30,
        'requested_expiry honoured';
    err_is bc('poll', authorization_details => '{not json'), 400,
        'invalid_authorization_details', 'authorization_details not JSON';
    err_is bc('poll', authorization_details => '{"type":"x"}'), 400,
        'invalid_authorization_details', 'authorization_details not an array';
    err_is bc('poll', authorization_details => '[{"no":"type"}]'), 400,
        'invalid_authorization_details', 'an entry without type';
    is bc('poll', authorization_details => '[{"type":"tool_call"}]')->{status},
        200, 'authorization_details array: 200';
};


my $details = [{ type => 'ciba_action', actions => ['refund'],
                 locations => ['https://tools.example/tools/refund'],
                 identifier => 'Ab_cd-1234' }];
my $details_str = $JSON->encode($details);

subtest 'poll: pending, slow_down, approve, tokens, once' => sub {
    adm_ok('reset', {});
    my $r = bc('poll', authorization_details => $details_str,
               acr_values => 'urn:mace:incommon:iap:silver',
               binding_message => 'Refund 5 EUR on A17');
    my $id = $r->{json}{auth_req_id};

    err_is tok('poll', $id), 400, 'authorization_pending', 'first poll';
    err_is tok('poll', $id), 400, 'slow_down', 'second poll at once';
    is adm_ok("auth/$id")->{poll_interval}, 10, 'slow_down added 5 s';
    adm_ok('config', { slow_down => JSON::PP::false });
    err_is tok('poll', $id), 400, 'authorization_pending',
        'at once again with slow_down off';
    err_is tok('ping', $id), 400, 'invalid_grant', "another client's id";
    err_is tok('poll', 'no-such-id'), 400, 'invalid_grant', 'unknown id';
    err_is tok('push', $id), 400, 'unauthorized_client', 'push client polls';
    err_is tok('poll', $id, grant_type => 'client_credentials'), 400,
        'unsupported_grant_type', 'other grant';
    err_is tok('poll', $id, grant_type => undef), 400, 'invalid_request',
        'no grant_type';
    err_is tok('poll', undef), 400, 'invalid_request', 'no auth_req_id';
    err_is call('POST', '/token', form => { grant_type => $CIBA,
                                            auth_req_id => $id }),
        401, 'invalid_client', 'token without client authentication';

    my $a = adm_ok('approve', { auth_req_id => $id });
    is $a->{state}, 'approved', 'approved';
    is $a->{notification}, undef, 'no callback for poll';
    err_is adm('approve', { auth_req_id => $id }), 409, 'not_pending',
        'approve twice';

    $r = call('POST', '/token',
              form => { grant_type => $CIBA, auth_req_id => $id,
                        client_id => 'poll-client',
                        client_secret => 'poll-secret' });
    is $r->{status}, 200, 'tokens (client_secret_post)';
    my $t = $r->{json};
    is $t->{token_type}, 'Bearer', 'Bearer';
    is $t->{expires_in}, 300, 'expires_in 300';

    my ($h, $p, $e) = jwt($t->{access_token}, verify_iss => $BASE,
                          verify_aud => 'https://tools.example');
    is $e, '', 'access token verifies against /jwks';
    is_deeply $h, { alg => 'ES256', typ => 'at+jwt',
                    kid => $jwks->{keys}[0]{kid} }, 'access token header';
    is $p->{sub}, 'alice', 'sub';
    is $p->{client_id}, 'poll-client', 'client_id';
    is $p->{scope}, 'openid', 'scope';
    is $p->{exp} - $p->{iat}, 300, 'lives 300 s';
    like $p->{jti}, qr/^[\w-]{16,}$/, 'jti';
    is_deeply $p->{authorization_details}, $details,
        'authorization_details as received';

    my ($ih, $ip, $ie) = jwt($t->{id_token}, verify_iss => $BASE,
                             verify_aud => 'poll-client');
    is $ie, '', 'id_token verifies';
    is $ip->{$ARID}, $id, 'id_token auth_req_id claim';
    is $ip->{at_hash}, at_hash($t->{access_token}), 'id_token at_hash';
    is $ip->{sub}, 'alice', 'id_token sub';
    is $ip->{acr}, 'urn:mace:incommon:iap:silver', 'acr from acr_values';

    err_is tok('poll', $id), 400, 'invalid_grant', 'second redemption';

    my $rec = adm_ok("auth/$id");
    is $rec->{state}, 'approved', 'record approved';
    ok $rec->{redeemed_at}, 'record redeemed';
    is $rec->{polls}, 4, 'four polls counted';
};


subtest 'poll: deny, expire, automatic expiry, approve by login_hint' => sub {
    adm_ok('reset', {});
    my $id = bc('poll')->{json}{auth_req_id};
    is adm_ok('deny', { auth_req_id => $id })->{state}, 'denied', 'denied';
    err_is tok('poll', $id), 400, 'access_denied', 'denied';

    $id = bc('poll')->{json}{auth_req_id};
    adm_ok('deny', { auth_req_id => $id, error => 'transaction_failed' });
    err_is tok('poll', $id), 400, 'transaction_failed', 'failed transaction';
    err_is adm('deny', { auth_req_id => $id, error => 'nope' }), 400,
        'invalid_request', 'unknown deny error';

    $id = bc('poll')->{json}{auth_req_id};
    is adm_ok('expire', { auth_req_id => $id })->{state}, 'expired', 'expired';
    err_is tok('poll', $id), 400, 'expired_token', 'expired';
    err_is adm('approve', { auth_req_id => $id }), 409, 'not_pending',
        'approve an expired one';

    $id = bc('poll', requested_expiry => 1)->{json}{auth_req_id};
    sleep 1.1;
    err_is tok('poll', $id), 400, 'expired_token', 'expired by time';

    my $old = bc('poll', login_hint => 'bob')->{json}{auth_req_id};
    my $new = bc('poll', login_hint => 'bob')->{json}{auth_req_id};
    my $a = adm_ok('approve', { login_hint => 'bob', sub => 'bob-approver' });
    is $a->{auth_req_id}, $new, 'approve by login_hint: the latest pending';
    is tok('poll', $new)->{status}, 200, 'the latest redeems';
    err_is tok('poll', $old), 400, 'authorization_pending',
        'the older one still pending';
    is adm_ok("auth/$new")->{sub}, 'bob-approver', 'sub override kept';
    err_is adm('approve', { login_hint => 'nobody' }), 404, 'not_found',
        'no pending request for that user';
    err_is adm('approve', {}), 400, 'invalid_request', 'nothing named';
};


subtest 'admin views: auth, pending, requests' => sub {
    adm_ok('reset', {});
    my $id = bc('ping', binding_message => 'Delete ticket 42',
                authorization_details => $details_str,
                client_notification_token => 'cnt-view-0123456789abcdef')
        ->{json}{auth_req_id};
    my $id2 = bc('poll', login_hint => 'bob')->{json}{auth_req_id};
    adm_ok('approve', { auth_req_id => $id2 });
    tok('poll', $id2);
    tok('poll', $id2);

    my $rec = adm_ok("auth/$id");
    is $rec->{state}, 'pending', 'state';
    is $rec->{binding_message}, 'Delete ticket 42', 'binding_message';
    is $rec->{login_hint}, 'alice', 'login_hint';
    is $rec->{authorization_details}, $details_str, 'raw authorization_details';
    is_deeply $rec->{authorization_details_json}, $details, 'parsed';
    is $rec->{client_notification_token}, 'cnt-view-0123456789abcdef',
        'client_notification_token';
    is $rec->{mode}, 'ping', 'mode';
    ok $rec->{created_at} > 1e12 && $rec->{expires_at} > $rec->{created_at},
        'times in ms';
    err_is adm('auth/nope'), 404, 'not_found', 'unknown id';

    my $pend = adm_ok('pending')->{pending};
    is_deeply [ map { $_->{auth_req_id} } @$pend ], [$id], 'pending: only it';
    is scalar @{ adm_ok('auth')->{auth_requests} }, 2, 'auth: both';

    my $req = adm_ok('requests');
    is $req->{count}, 4, 'four requests logged';
    is_deeply $req->{counts}, { '/bc-authorize' => 2, '/token' => 2 },
        'counts per path';
    my $first = $req->{requests}[0];
    is $first->{method}, 'POST', 'method';
    is $first->{path}, '/bc-authorize', 'path';
    like $first->{headers}{authorization}, qr/^Basic /, 'headers';
    like $first->{body}, qr/binding_message=Delete\+ticket\+42/, 'raw body';
    is $first->{form}{binding_message}, 'Delete ticket 42', 'parsed form';
    is $first->{form}{authorization_details}, $details_str, 'form details';
    is $first->{client_auth}, 'client_secret_basic', 'client_auth';
    is $first->{client_id}, 'ping-client', 'client_id';
    is $first->{status}, 200, 'status';
    ok abs($first->{time} / 1000 - time) < 60, 'time in ms';

    my $tk = adm_ok('requests?path=/token');
    is $tk->{count}, 2, 'filtered by path';
    is_deeply [ map { $_->{answer}{access_token} ? 'tokens' : $_->{answer}{error} }
                @{ $tk->{requests} } ],
        ['tokens', 'invalid_grant'], 'answers logged';
    is adm_ok("requests?since=$tk->{requests}[0]{seq}")->{count}, 1, 'since';
    err_is adm('requests?since=x'), 400, 'invalid_request', 'bad since';
};


subtest 'config' => sub {
    adm_ok('reset', {});
    my $c = adm_ok('config', {
        issuer => 'https://as.example', audience => 'https://api.example',
        expires_in => 60, interval => undef, token_ttl => 120,
        users => { alice => {}, carol => { sub => 'user-carol' } },
        binding_message_regex => '^[a-z ]{1,10}$',
    });
    is $c->{options}{issuer}, 'https://as.example', 'issuer set';
    is $c->{options}{interval}, undef, 'interval null';

    my $r = bc('poll', login_hint => 'carol', binding_message => 'ok now');
    is $r->{status}, 200, 'new user accepted';
    is $r->{json}{expires_in}, 60, 'expires_in 60';
    ok !exists $r->{json}{interval}, 'interval omitted';
    err_is bc('poll', login_hint => 'bob', binding_message => 'ok'), 400,
        'unknown_user_id', 'users replaced';
    err_is bc('poll', login_hint => 'carol', binding_message => 'Refund 5'),
        400, 'invalid_binding_message', 'regex replaced';

    my $id = $r->{json}{auth_req_id};
    is adm_ok("auth/$id")->{poll_interval}, 5, 'no interval: polls at 5 s';
    adm_ok('approve', { auth_req_id => $id });
    my $t = tok('poll', $id)->{json};
    is $t->{expires_in}, 120, 'token_ttl';
    my ($h, $p, $e) = jwt($t->{access_token}, verify_iss => 'https://as.example',
                          verify_aud => 'https://api.example');
    is $e, '', 'issuer and audience in the token';
    is $p->{sub}, 'user-carol', 'sub from the user table';

    adm_ok('config', { clients => {
        'post-only' => { secret => 's3', mode => 'poll',
                         auth_method => 'client_secret_post' } } });
    err_is call('POST', '/bc-authorize', basic => ['post-only', 's3'],
                form => { scope => 'openid', login_hint => 'alice' }),
        401, 'invalid_client', 'client_secret_basic refused for a post-only client';
    is call('POST', '/bc-authorize',
            form => { scope => 'openid', login_hint => 'alice',
                      client_id => 'post-only', client_secret => 's3' })
        ->{status}, 200, 'client_secret_post accepted';
    adm_ok('config', { clients => { 'post-only' => undef } });
    ok !exists adm_ok('config')->{clients}{'post-only'}, 'client deleted';

    adm_ok('config', { access_token_format => 'opaque', id_token => JSON::PP::true });
    $id = bc('poll', login_hint => 'alice', binding_message => 'ok')
        ->{json}{auth_req_id};
    adm_ok('approve', { auth_req_id => $id });
    $t = tok('poll', $id)->{json};
    unlike $t->{access_token}, qr/\./, 'opaque access token';
    my (undef, $ip) = jwt($t->{id_token}, verify_aud => 'poll-client');
    is $ip->{at_hash}, at_hash($t->{access_token}), 'at_hash of the opaque token';

    err_is adm('config', { frobnicate => 1 }), 400, 'invalid_request',
        'unknown option';
    err_is adm('config', { binding_message_regex => '(' }), 400,
        'invalid_request', 'bad regex';
    err_is adm('config', { expires_in => -1, issuer => 'https://no' }), 400,
        'invalid_request', 'bad value';
    is adm_ok('config')->{options}{issuer}, 'https://as.example',
        'a refused config changes nothing';
    err_is adm('config', { clients => { x => { secret => 's',
                                              callback => 'http://192.0.2.1/' } } }),
        400, 'invalid_request', 'callback off loopback refused';
    err_is adm('config', { corrupt => 'everything' }), 400, 'invalid_request',
        'unknown corruption';

    adm_ok('reset', {});
    my $o = adm_ok('config')->{options};
    is $o->{issuer}, undef, 'reset restores the issuer';
    is $o->{interval}, 5, 'reset restores the interval';
    ok exists adm_ok('config')->{users}{carol}, 'reset keeps the users';
    adm_ok('config', { users => ['alice', 'bob'] });
};


subtest 'scripted answers and faults' => sub {
    adm_ok('reset', {});
    my $q = adm_ok('script', { endpoint => '/bc-authorize', responses => [
        { status => 500, body => 'oops' },
        { fault => 'refuse' },
        { fault => 'hang' },
        { fault => 'garbage' },
        { fault => 'huge', size => 10485760 },
        { status => 302, headers => { Location => 'http://127.0.0.1:1/' } },
        { status => 200, json => { auth_req_id => 'x' } },
        { delay_ms => 300, status => 200, json => { auth_req_id => 'late' } },
        { fault => 'reset' },
        { fault => 'truncated', size => 100 },
        { fault => 'huge', size => 5000, chunked => JSON::PP::true },
        { delay_ms => 200 },
        { status => 503, body => 'again', times => 2 },
    ] });
    is $q->{queued}, 14, 'fourteen queued';
    is_deeply adm_ok('script')->{scripts}, { '/bc-authorize' => 14 },
        'script listing';

    my $r = bc('poll');
    is $r->{status}, 500, 'status 500';
    is $r->{content}, 'oops', 'body oops';

    $r = bc('poll');
    is $r->{status}, 599, 'refuse: no answer';

    my $t0 = time;
    $r = call('POST', '/bc-authorize', timeout => 1, basic => creds('poll'),
              form => { scope => 'openid', login_hint => 'alice' });
    my $dt = time - $t0;
    is $r->{status}, 599, 'hang: client timeout';
    ok $dt >= 0.9 && $dt < 3, sprintf 'hang: gave up after %.2f s', $dt;

    $r = bc('poll');
    is $r->{status}, 200, 'garbage: 200';
    is $r->{json}, undef, 'garbage: not JSON';
    like $r->{headers}{'content-type'}, qr/json/, 'garbage: claims JSON';

    $r = bc('poll');
    is $r->{status}, 200, 'huge: 200';
    is length $r->{content}, 10485760, 'huge: 10 MiB';
    is $r->{headers}{'content-length'}, 10485760, 'huge: Content-Length';
    like substr($r->{content}, 0, 20), qr/^\{"auth_req_id":"A/, 'huge: JSON-looking';

    $r = bc('poll');
    is $r->{status}, 302, 'redirect';
    is $r->{headers}{location}, 'http://127.0.0.1:1/', 'Location';

    $r = bc('poll');
    is $r->{status}, 200, 'scripted 200';
    is $r->{content}, '{"auth_req_id":"x"}', 'exact JSON';

    $t0 = time;
    $r = bc('poll');
    ok time - $t0 >= 0.29, 'delayed';
    is $r->{json}{auth_req_id}, 'late', 'delayed answer';

    is bc('poll')->{status}, 599, 'reset: no answer';
    is bc('poll')->{status}, 599, 'truncated: an error';

    $r = bc('poll');
    is length $r->{content}, 5000, 'chunked huge: 5000 bytes';
    ok !defined $r->{headers}{'content-length'}, 'chunked huge: no length';

    $t0 = time;
    $r = bc('poll');
    ok time - $t0 >= 0.19, 'delay alone: delayed';
    like $r->{json}{auth_req_id}, qr/^[\w-]{40,}$/, 'delay alone: normal answer';

    is bc('poll')->{status}, 503, 'times: first 503';
    is bc('poll')->{status}, 503, 'times: second';
    is bc('poll')->{status}, 200, 'queue empty: normal again';
    is_deeply adm_ok('script')->{scripts}, {}, 'nothing queued';

    my $log = adm_ok('requests?path=/bc-authorize');
    is $log->{count}, 15, 'every request logged';
    is $log->{requests}[1]{scripted}{fault}, 'refuse', 'scripted step logged';
    is $log->{requests}[1]{status}, undef, 'no status when refused';
    is $log->{requests}[14]{scripted}, undef, 'normal request not scripted';

    # other endpoints, and replace
    adm_ok('script', { endpoint => '/token', responses => [
        { status => 400, json => { error => 'slow_down' } }] });
    adm_ok('script', { endpoint => '/token', replace => JSON::PP::true,
                       responses => [{ status => 400,
                                       json => { error => 'invalid_client' } }] });
    is tok('poll', 'x')->{json}{error}, 'invalid_client', 'replace';
    adm_ok('script', { endpoint => '/jwks',
                       response => { status => 200, json => { keys => [] } } });
    is_deeply call('GET', '/jwks')->{json}, { keys => [] }, 'jwks scripted';

    # a hung request is closed by reset
    adm_ok('script', { endpoint => '/token', responses => [{ fault => 'hang' }] });
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT") or die $!;
    print $s "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           . "Content-Length: 0\r\nConnection: close\r\n\r\n";
    sleep 0.2;
    adm_ok('reset', {});
    my $got = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 3;
        my $l = <$s>;
        alarm 0;
        $l;
    };
    is $@, '', 'reset: the hung connection did not stay open';
    is $got, undef, 'reset: closed without an answer';

    for my $bad ({ fault => 'explode' }, { status => 99 }, 'x',
                 { status => 200, json => {}, body => 'x' },
                 { frob => 1 }, { headers => { 'Bad Name' => 'x' }, status => 200 })
    {
        err_is adm('script', { endpoint => '/token', responses => [$bad] }),
            400, 'invalid_request', 'bad step ' . $JSON->encode($bad);
    }
    err_is adm('script', { endpoint => '/_admin/reset', responses => [] }),
        400, 'invalid_request', 'admin paths cannot be scripted';
};


sub cb_since {
    my $n = shift;
    my @all = callbacks();
    return @all[$n .. $#all];
}

subtest 'ping' => sub {
    adm_ok('reset', {});
    adm_ok('config', { clients => { 'ping-client' => { callback => "$CB/cb/ping" } } });
    my $cnt = 'cnt-ping-' . ('a1' x 16);
    my $id = bc('ping', client_notification_token => $cnt)->{json}{auth_req_id};
    err_is tok('ping', $id), 400, 'authorization_pending', 'ping client before the ping';

    my $n = () = callbacks();
    my $a = adm_ok('approve', { auth_req_id => $id });
    is $a->{notification}{status}, 204, 'the callback status is reported';
    ok $a->{notified}, 'notified';
    my @got = cb_since($n);
    is scalar @got, 1, 'one callback';
    is $got[0]{method}, 'POST', 'POST';
    is $got[0]{path}, '/cb/ping', 'to the callback path';
    is $got[0]{headers}{authorization}, "Bearer $cnt", 'bearer is the token';
    like $got[0]{headers}{'content-type'}, qr{^application/json}, 'JSON';
    is_deeply $JSON->decode($got[0]{body}), { auth_req_id => $id }, 'ping body';

    my $t = tok('ping', $id);
    is $t->{status}, 200, 'tokens after the ping';
    my (undef, $ip) = jwt($t->{json}{id_token}, verify_aud => 'ping-client');
    is $ip->{$ARID}, $id, 'id_token for this request';

    $id = bc('ping')->{json}{auth_req_id};
    $n = () = callbacks();
    adm_ok('approve', { auth_req_id => $id, notification_token => 'wrong' });
    is +(cb_since($n))[0]{headers}{authorization}, 'Bearer wrong',
        'wrong bearer on request';

    $id = bc('ping')->{json}{auth_req_id};
    $n = () = callbacks();
    $a = adm_ok('approve', { auth_req_id => $id, notify => JSON::PP::false });
    is $a->{notification}, undef, 'notify false: nothing sent';
    sleep 0.1;
    my @none = cb_since($n);
    is scalar @none, 0, 'notify false: no callback';

    $id = bc('ping')->{json}{auth_req_id};
    $n = () = callbacks();
    $a = adm_ok('deny', { auth_req_id => $id });
    is_deeply $JSON->decode((cb_since($n))[0]{body}), { auth_req_id => $id },
        'deny pings too';
    err_is tok('ping', $id), 400, 'access_denied', 'then access_denied';

    $id = bc('ping')->{json}{auth_req_id};
    $a = adm_ok('approve', { auth_req_id => $id, callback => "$CB/cb/fail" });
    is $a->{notification}{status}, 500, 'a failing callback is reported';

    adm_ok('config', { clients => { 'ping-client' => {
        callback => 'http://127.0.0.1:1/nothing-here' } } });
    $id = bc('ping')->{json}{auth_req_id};
    $a = adm_ok('approve', { auth_req_id => $id });
    is $a->{notification}{status}, undef, 'unreachable callback: no status';
    like $a->{notification}{error}, qr/ECONNREFUSED/, 'unreachable callback: error';
    is $a->{state}, 'approved', 'still approved';
    adm_ok('config', { clients => { 'ping-client' => { callback => "$CB/cb/ping" } } });
};


subtest 'push' => sub {
    adm_ok('reset', {});
    adm_ok('config', { clients => { 'push-client' => { callback => "$CB/cb/push" } } });
    my $cnt = 'cnt-push-' . ('b2' x 16);
    my $id = bc('push', client_notification_token => $cnt,
                authorization_details => $details_str)->{json}{auth_req_id};

    my $n = () = callbacks();
    my $a = adm_ok('approve', { auth_req_id => $id });
    is $a->{notification}{status}, 204, 'push delivered';
    my ($got) = cb_since($n);
    is $got->{headers}{authorization}, "Bearer $cnt", 'bearer';
    my $body = $JSON->decode($got->{body});
    is_deeply [ sort keys %$body ],
        [qw(access_token auth_req_id expires_in id_token token_type)],
        'push payload fields';
    is $body->{auth_req_id}, $id, 'auth_req_id';
    is $body->{token_type}, 'Bearer', 'token_type';
    is_deeply $a->{tokens}{access_token}, $body->{access_token},
        'the answer has the pushed tokens';
    my ($h, $p, $e) = jwt($body->{access_token});
    is $e, '', 'pushed access token verifies';
    is_deeply $p->{authorization_details}, $details, 'with the details';
    my ($ih, $ip, $ie) = jwt($body->{id_token}, verify_aud => 'push-client');
    is $ie, '', 'pushed id_token verifies';
    is $ip->{$ARID}, $id, 'id_token auth_req_id';
    is $ip->{at_hash}, at_hash($body->{access_token}), 'id_token at_hash';
    err_is tok('push', $id), 400, 'unauthorized_client', 'push client never polls';
    ok adm_ok("auth/$id")->{redeemed_at}, 'pushed: redeemed';

    for my $c (qw(at_hash auth_req_id signature)) {
        my $id = bc('push')->{json}{auth_req_id};
        my $n = () = callbacks();
        adm_ok('approve', { auth_req_id => $id, corrupt => $c });
        my $b = $JSON->decode((cb_since($n))[0]{body});
        my ($h, $p, $e) = jwt($b->{id_token});
        if ($c eq 'signature') {
            like $e, qr/./, 'corrupt signature: the id_token fails';
            ($h, $p, $e) = jwt($b->{access_token});
            is $e, '', 'corrupt signature: the access token is fine';
        } elsif ($c eq 'at_hash') {
            is $e, '', 'corrupt at_hash: still signed';
            isnt $p->{at_hash}, at_hash($b->{access_token}), 'at_hash wrong';
        } else {
            is $e, '', 'corrupt auth_req_id: still signed';
            isnt $p->{$ARID}, $id, 'auth_req_id claim wrong';
            is $b->{auth_req_id}, $id, 'payload auth_req_id right';
        }
    }

    my %err = (deny => 'access_denied', expire => 'expired_token');
    for my $what (qw(deny expire)) {
        my $id = bc('push')->{json}{auth_req_id};
        my $n = () = callbacks();
        my $a = adm_ok($what, { auth_req_id => $id });
        is $a->{notification}{status}, 204, "$what: pushed";
        my $b = $JSON->decode((cb_since($n))[0]{body});
        is_deeply [ sort keys %$b ], [qw(auth_req_id error error_description)],
            "$what: error payload";
        is $b->{error}, $err{$what}, "$what: $err{$what}";
    }
    $id = bc('push')->{json}{auth_req_id};
    $n = () = callbacks();
    adm_ok('deny', { auth_req_id => $id, error => 'transaction_failed',
                     error_description => 'the phone fell in the sea' });
    my $b = $JSON->decode((cb_since($n))[0]{body});
    is $b->{error}, 'transaction_failed', 'transaction_failed pushed';
    is $b->{error_description}, 'the phone fell in the sea', 'description';
};


subtest 'notify' => sub {
    my $n = () = callbacks();
    my $r = adm_ok('notify', { client_id => 'ping-client',
                               headers => { Authorization => 'Bearer zzz',
                                            'X-Test' => 'yes' },
                               body => 'not json at all' });
    is $r->{status}, 204, 'status reported';
    my ($got) = cb_since($n);
    is $got->{path}, '/cb/ping', "the client's callback";
    is $got->{headers}{authorization}, 'Bearer zzz', 'headers as given';
    is $got->{headers}{'x-test'}, 'yes', 'extra header';
    ok !exists $got->{headers}{'content-type'}, 'no type added for a body';
    is $got->{body}, 'not json at all', 'body as given';

    $n = () = callbacks();
    $r = adm_ok('notify', { url => "$CB/cb/fail", json => { auth_req_id => 7 } });
    is $r->{status}, 500, 'url, failing';
    ($got) = cb_since($n);
    is $got->{body}, '{"auth_req_id":7}', 'json body';
    like $got->{headers}{'content-type'}, qr{application/json}, 'json type';
    ok !exists $got->{headers}{authorization}, 'nothing added';

    err_is adm('notify', { client_id => 'poll-client' }), 400,
        'invalid_request', 'a client without a callback';
    err_is adm('notify', { url => 'http://192.0.2.1/' }), 400,
        'invalid_request', 'off-loopback URL';
    err_is adm('notify', {}), 400, 'invalid_request', 'no target';
};


subtest 'corrupt tokens on the poll path' => sub {
    adm_ok('reset', {});
    my %check = (
        iss => sub { my ($p) = @_; $p->{iss} ne $BASE },
        aud => sub { my ($p) = @_; $p->{aud} ne 'poll-client' },
        sub => sub { my ($p) = @_; $p->{sub} ne 'alice' },
    );
    my $get = sub {
        my (%o) = @_;
        my $id = bc('poll', authorization_details => $details_str)
            ->{json}{auth_req_id};
        adm_ok('approve', { auth_req_id => $id, %o });
        return (tok('poll', $id)->{json}, $id);
    };
    for my $c (sort keys %check) {
        my ($t) = $get->(corrupt => [$c]);
        my (undef, $p, $e) = jwt($t->{id_token});
        ok !$e && $check{$c}->($p), "id_token $c corrupted"
            or diag explain { answer => $t, error => $e, claims => $p };
    }
    my ($t) = $get->(corrupt => 'exp');
    like +(jwt($t->{id_token}))[2], qr/exp/, 'id_token exp in the past';
    ($t) = $get->(corrupt => 'iat');
    like +(jwt($t->{id_token}))[2], qr/iat/, 'id_token iat in the future';
    ($t) = $get->(corrupt => 'kid');
    like +(jwt($t->{id_token}))[2], qr/./, 'id_token unknown kid';
    ($t) = $get->(corrupt => ['access_token.signature']);
    like +(jwt($t->{access_token}))[2], qr/./, 'access token signature';
    is +(jwt($t->{id_token}))[2], '', 'its id_token is fine';
    ($t) = $get->(corrupt => ['access_token.authorization_details',
                              'access_token.typ']);
    my ($h, $p, $e) = jwt($t->{access_token});
    is $e, '', 'still signed';
    isnt $p->{authorization_details}[0]{identifier}, $details->[0]{identifier},
        'authorization_details tampered';
    is $h->{typ}, 'JWT', 'typ changed';

    adm_ok('config', { corrupt => ['at_hash'] });
    ($t) = $get->();
    (undef, $p) = jwt($t->{id_token});
    isnt $p->{at_hash}, at_hash($t->{access_token}), 'config corrupt applies';
    adm_ok('config', { corrupt => [] });
};


subtest 'keys: rotate, --key, --verbose, SIGTERM' => sub {
    my $k = adm_ok('key');
    is $k->{kid}, $jwks->{keys}[0]{kid}, 'current kid';
    like $k->{private_pem}, qr/BEGIN PRIVATE KEY/, 'private key PEM';

    my $rot = adm_ok('rotate', {});
    isnt $rot->{kid}, $k->{kid}, 'new kid';
    is scalar @{ $rot->{kids} }, 2, 'old key kept';
    my $set = call('GET', '/jwks')->{json};
    is scalar @{ $set->{keys} }, 2, 'jwks has both';
    my $id = bc('poll')->{json}{auth_req_id};
    adm_ok('approve', { auth_req_id => $id });
    my $t = tok('poll', $id)->{json};
    my ($h, $p) = eval { decode_jwt(token => $t->{access_token},
                                    kid_keys => $set, decode_header => 1) };
    is $h && $h->{kid}, $rot->{kid}, 'signed with the new key';

    my $pem = "$dir/key.pem";
    open my $fh, '>', $pem or die $!;
    print $fh $k->{private_pem};
    close $fh;
    my $err = "$dir/second.err";
    my ($pid2, $port2) = start_mock($err, '--port', '0', '--key', $pem,
                                    '--verbose');
    isnt $port2, $PORT, 'second mock on its own port';
    my $base2 = "http://127.0.0.1:$port2";
    my $j2 = call('GET', '/jwks', base => $base2)->{json};
    is $j2->{keys}[0]{kid}, $k->{kid}, '--key: same kid';
    is $j2->{keys}[0]{x}, $k->{jwk}{x}, '--key: same public key';
    call('GET', '/jwks', base => $base2);
    sleep 0.1;
    open my $e, '<', $err or die $!;
    my @lines = <$e>;
    close $e;
    is scalar @lines, 2, '--verbose: one line per request';
    like $lines[0], qr{GET "/jwks" 200}, '--verbose: method, path, status';

    my $t0 = time;
    kill 'TERM', $pid2;
    waitpid $pid2, 0;
    is $?, 0, 'SIGTERM: exit 0';
    ok time - $t0 < 2, 'SIGTERM: promptly';
    @kill = grep { $_ != $pid2 } @kill;
};


subtest 'bad input' => sub {
    err_is adm('config', 'not an object'), 400, 'invalid_json', 'JSON string';
    err_is call('POST', '/_admin/config', body => '{oops',
                headers => { 'Content-Type' => 'application/json' }),
        400, 'invalid_json', 'broken JSON';
    err_is adm('nothing'), 404, 'not_found', 'unknown admin path';
    err_is call('GET', '/_admin/approve'), 405, 'invalid_request', 'wrong method';
    err_is call('POST', '/token', basic => creds('poll'),
                form => { grant_type => $CIBA, auth_req_id => 'x' x (2 << 20) }),
        413, 'invalid_request', 'a 2 MiB body';
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT") or die $!;
    print $s "BLAH\x00 / HTTP/9\r\n\r\n";
    my $l = <$s>;
    like $l // '', qr/^HTTP\/1\.1 400/, 'garbage request line: 400';
    close $s;
    err_is call('POST', '/bc-authorize',
                headers => { Authorization => 'Basic !!!' },
                form => { scope => 'openid' }),
        401, 'invalid_client', 'broken Basic header';
    err_is call('POST', '/bc-authorize',
                headers => { Authorization => 'Basic '
                             . encode_base64('%zz:%', '') },
                form => { scope => 'openid' }),
        401, 'invalid_client', 'broken form-encoding in Basic';
    is call('GET', '/jwks')->{status}, 200, 'still alive';
    ok kill(0, $mock_pid), 'the mock did not crash';
};


ok time - $t_start < 20, sprintf 'finished in %.1f s', time - $t_start;

done_testing();
