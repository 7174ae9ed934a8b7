# The shared zone of single-use records when it is full (README:
# "ciba_zone"): a live record is never evicted, so a full zone refuses new
# approvals with 503 approval_unavailable (reason zone_full, Retry-After:
# the seconds until the earliest record expires) and says so in the error
# log, while the tokens it remembers stay refused as replays; once records
# expire, new approvals pass again.
#
# Plain Perl (not a data-driven Test::Nginx file): it sends tokens until
# the zone is full, an amount only known at run time.  It also reports
# how many records fit in the smallest zone (32k, 8 pages).
#
# Every start loads a "warm" state file (CibaTest::warm_state: a zone that
# started an hour ago, without records), so tokens issued now pass at once:
# the restart rule (iat later than the zone's start plus the leeway) is
# tested in t/075-reload-restart.t, not here.
use strict;
use warnings;

use lib 't';

use Test::More;

BEGIN {
    plan skip_all => 'filling the zone takes hundreds of requests, too '
                     . 'slow under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(mint keys_dir warm_state);

my $ng = CibaNginx->new(workers => 2);
my $keys = keys_dir();
my $port = $ng->port;

my $ARGS = 'order=42&amount=10';
my $BODY = '{"reason":"duplicate charge"}';

# /tools/refund: the default lifetimes (leeway 10 s, max age 300 s); the
# tokens are valid for 120 s (CibaTest::mint), so their records live
# 120 + 10 + 1 s after iat;
# /tools/short: records that live 3 s (exp 2 s after iat, no leeway)
my $LONG_LIFE = 120 + 10 + 1;
my $SHORT_LIFE = 2 + 0 + 1;

# the state file of the current start: a new warm one for every start (a
# stop saves the zone to the file it was loaded from)
my $state;

sub config {
    $state = warm_state(epoch => int(time) - 3600);

    $ng->write_config(
        http   => "    ciba_zone z:32k state=$state;\n",
        server => <<"_EOC_");
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $keys/ec256.pub kid=ec1;

        location = /tools/refund {
            ciba on;
            proxy_pass http://127.0.0.1:$port/backend;
        }

        location = /tools/short {
            ciba on;
            ciba_leeway 0;
            ciba_token_max_age 2s;
            proxy_pass http://127.0.0.1:$port/backend;
        }

        location /backend {
            return 200 "upstream ran\\n";
        }
_EOC_
}

# starts nginx on a new warm state file; true when it runs
sub start_warm {
    my ($name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    config();

    my $off = $ng->log_offset;

    if (!ok($ng->start, $name)) {
        diag $ng->error;
        return 0;
    }

    return like($ng->log_since($off),
                qr/\[notice\].*ciba: loaded 0 single-use records from "\Q$state\E"/,
                "$name: the warm state is loaded (the zone started an hour "
                . 'ago)');
}

sub token {
    my ($path, %claims) = @_;
    return mint(path => $path, args => $ARGS, body => $BODY,
                claims => { iat => int(time), %claims });
}

sub req {
    my ($path, $token) = @_;
    return { method => 'POST', uri => "$path?$ARGS", body => $BODY,
             headers => [ 'Content-Type' => 'application/json',
                          'Approval-Token' => $token ] };
}

sub send_token {
    my $r = req(@_);
    return $ng->request($r->{method}, $r->{uri}, %$r);
}

sub error_reason {
    my ($body) = @_;
    my ($e) = ($body // '') =~ /"error":"([^"]*)"/;
    my ($r) = ($body // '') =~ /"reason":"([^"]*)"/;
    return ($e // '-') . ' ' . ($r // '-');
}

sub status_of { return $_[0][0] // 'none' }

sub summary {
    my %n;
    $n{ status_of($_) }++ for @_;
    return join ', ', map { "$_: $n{$_}" } sort keys %n;
}

# checks a zone_full refusal: 503, the JSON error and reason, and
# Retry-After: the seconds until the earliest record expires, so at least 1
# and at most $max, the longest lifetime of the records in the zone
sub is_zone_full {
    my ($res, $name, $max) = @_;
    my ($status, $h, $body) = @$res;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    is(($status // 'none') . ' ' . error_reason($body),
       '503 approval_unavailable zone_full', "$name: 503 zone_full");

    my $ra = $h->{'retry-after'} // '';
    ok($ra =~ /^\d+$/ && $ra >= 1 && $ra <= $max,
       "$name: Retry-After is a number of seconds, 1 to $max")
        or diag "Retry-After: \"$ra\"";

    like($h->{'content-type'} // '', qr{^application/json},
         "$name: a JSON answer");
}

if (!start_warm('nginx starts with a 32k zone')) {
    done_testing;
    exit;
}

# ---- fill the zone with long-lived records ----------------------------------

my (@used, $refused, $refused_res);
my $off = $ng->log_offset;

for (1 .. 5000) {
    my $t = token('/tools/refund');
    my @res = send_token('/tools/refund', $t);

    if (($res[0] // '') eq '200') {
        push @used, $t;
        next;
    }

    ($refused, $refused_res) = ($t, \@res);
    last;
}

my $fit = @used;

ok($refused, "fresh tokens pass until the zone is full ($fit passed)")
    or do { diag "no refusal after $fit tokens"; done_testing; exit };

diag "records that fit in a 32k zone: $fit";

cmp_ok($fit, '>=', 32, 'the zone held at least a page of records');

is_zone_full($refused_res, 'the first token refused', $LONG_LIFE);

{
    my $log = $ng->log_since($off);
    like($log,
         qr/\[error\].*ciba: zone "z" is full of live single-use records \($fit\), the approval is refused/,
         "the error log says the zone is full ($fit records)");
    like($log, qr/ciba: decision=unavailable reason=zone_full /,
         'the decision line says zone_full');
}

is_zone_full([ send_token('/tools/refund', token('/tools/refund')) ],
             'another fresh token', $LONG_LIFE);

is_zone_full([ send_token('/tools/refund', $refused) ],
             'the refused token again (it was not recorded)', $LONG_LIFE);

{
    my @res = $ng->parallel([ map { req('/tools/refund', $_) } @used ]);
    is(scalar(grep { status_of($_) eq '403'
                     && $_->[2] =~ /"error":"approval_replayed"/ } @res),
       $fit, "all $fit tokens used before are still refused as replays "
             . '(no record was evicted)')
        or diag 'answers: ' . summary(@res);
}

# ---- short-lived records: the zone recovers when they expire ----------------

ok($ng->stop, 'nginx stops');
unlink $state;      # the full zone, saved at the stop
start_warm('nginx starts again: an empty zone');

# all tokens issued in one second T and valid until T + 2: their records
# live until T + 3, so the zone must be filled before that
{
    my $s = int(time);
    sleep($s + 1.02 - time) while int(time) == $s;
}

my $T = int(time);
my @short = map { token('/tools/short', iat => $T, exp => $T + 2) }
            1 .. $fit + 10;

$off = $ng->log_offset;

my @res = $ng->parallel([ map { req('/tools/short', $_) } @short ]);
my $filled = time;

cmp_ok($filled, '<', $T + 3,
       'the zone was filled while the short-lived tokens were valid');

is(scalar(grep { status_of($_) eq '200' } @res), $fit,
   ($fit + 10) . " short-lived tokens at once: $fit pass (a new zone "
   . 'holds as many records)')
    or diag 'answers: ' . summary(@res);

{
    my @full = grep { status_of($_) eq '503' } @res;
    is(scalar @full, 10, '... and 10 are refused')
        or diag 'answers: ' . summary(@res);
    is_zone_full($full[0], 'a short-lived token', $SHORT_LIFE) if @full;
}

like($ng->log_since($off), qr/ciba: zone "z" is full of live single-use/,
     'the error log says the zone is full');

is_zone_full([ send_token('/tools/short',
                          token('/tools/short', exp => int(time) + 2)) ],
             'a fresh short-lived token before the records expire',
             $SHORT_LIFE);

# the answer names the earliest record of the zone, not the token's own
# lifetime: a long-lived token is told to retry when the short-lived
# records go
is_zone_full([ send_token('/tools/refund', token('/tools/refund')) ],
             'a long-lived token in a zone full of short-lived records',
             $SHORT_LIFE);

# the records expire at T + 3: one second more for nginx's cached clock
sleep($T + 4.1 - time) if time < $T + 4.1;

$off = $ng->log_offset;

{
    my ($status, $h, $body) = send_token('/tools/short',
        token('/tools/short', exp => int(time) + 2));
    is($status, 200, 'after the records expired, a fresh token passes')
        or diag $body;

    my @more = map { token('/tools/short', exp => int(time) + 2) } 1 .. 20;
    my @res = $ng->parallel([ map { req('/tools/short', $_) } @more ]);
    is(scalar(grep { status_of($_) eq '200' } @res), 20,
       '... and 20 more at once')
        or diag 'answers: ' . summary(@res);

    ($status, $h, $body) = send_token('/tools/refund',
                                      token('/tools/refund'));
    is($status, 200, '... and a long-lived one in the other location');
}

unlike($ng->log_since($off), qr/is full of live/,
       'no "zone is full" since the records expired');

ok($ng->stop, 'nginx stops');
unlink $state;

is($ng->crash_reports, '', 'no crashed worker, no sanitizer report');

done_testing;
