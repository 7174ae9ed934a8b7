# Reloads under load: "nginx -s reload" (SIGHUP to the master) every
# second for 20 s (60 s with SOAK=1) while four client processes send,
# without pause:
#
# - fresh approval tokens out of a shared pool, each token in turn (50 a
#   second) used by every client at about the same time, so the same
#   token races across both workers and across worker generations;
# - replays of earlier tokens of the pool;
# - retries of eight CIBA approvals (poll mode, the mock AS) asked before
#   the first reload: with the handle, and for the four that are not
#   approved during the run, bare retries too; four of them are approved
#   half-way through.
#
# Checked afterwards:
#
# - no admitted replay: every token of the pool that was used was admitted
#   exactly once (one 200 and one decision=approved line per jti) across
#   all workers and generations, every other use was 403
#   approval_replayed; every approval was admitted at most once;
# - no lost pending approval: the AS got exactly one backchannel request
#   per approval, and every token request was for one of them; bare
#   retries were answered with the handle given before the reloads; after
#   the run, each handle still works: an approved one was admitted once
#   (then it is a replay), the others are still pending with their handle
#   and pass once approved;
# - no crash: no "exited on signal", no [alert], [crit] or [emerg], every
#   reload brought up a new generation of workers.
#
# nginx on TEST_NGINX_SERVER_PORT, the mock AS on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use POSIX ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use CibaLoad qw(kind tally summary json_of decision_lines mock_up as
                as_reqs as_count plan_skip wait_until fast_mint stop_ok
                write_soak_config);

plan_skip('timing-based load under reloads');

my $SOAK = $ENV{SOAK} ? 1 : 0;
my $DURATION = $SOAK ? 60 : 20;     # seconds of reloads under load
my $CLIENTS = 4;
my $RATE = 50;                      # fresh tokens a second
my $P = 8;                          # pending approvals
my $APPROVED = 4;                   # of them approved half-way

my $T0 = time;

my $ng = CibaNginx->new(workers => 2, worker_connections => 2048,
                        timeout => 30);
my $state = warm_state(epoch => int(time) - 3600);
my $logs = $ng->servroot . '/logs';
my $BODY = '{"reason":"duplicate charge"}';

my $mport = mock_up($ng, users => [ map { "p$_" } 1 .. $P ]);

write_soak_config($ng, $mport, state => $state, zone => '16m',
                  as_timeout => '10s');

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);


# ---- the pool of tokens --------------------------------------------------------

my $POOL = int($DURATION * $RATE) + 2 * $RATE;
my (@tokens, @jtis);
{
    my $t = time;
    my $now = int(time);
    for my $i (0 .. $POOL - 1) {
        my $jti = "soak-$$-$i";
        push @jtis, $jti;
        push @tokens, fast_mint(path => '/tools/refund',
                                args => "order=t$i&amount=10", body => $BODY,
                                claims => { jti => $jti, iat => $now,
                                            exp => $now + $DURATION + 120 });
    }
    note sprintf '%d tokens minted in %.1f s', $POOL, time - $t;
}


# ---- the pending approvals, asked before the reloads -------------------------

my (@handles, @ids);
for my $i (1 .. $P) {
    my ($st, $h, $body) = $ng->request('POST', "/ciba/refund?order=p$i",
        headers => [ 'X-User' => "p$i" ], body => $BODY);
    my $j = json_of($body);
    is("$st $j->{reason}", '401 asked', "approval p$i asked")
        or diag $body;
    push @handles, $j->{approval_handle};
}
{
    my %by = map { ($_->{form}{login_hint} => $_->{answer}{auth_req_id}) }
             as_reqs('/bc-authorize');
    @ids = map { $by{"p$_"} } 1 .. $P;
    is(scalar(grep { defined } @ids), $P, "$P backchannel requests");
}


# ---- the clients -------------------------------------------------------------

my $START = time + 0.5;
my $END = $START + $DURATION;

sub client {
    my ($c) = @_;
    srand($$ ^ int(time * 1000));
    open my $out, '>', "$logs/client-$c.txt" or die "$logs/client-$c.txt: $!";
    sleep($START - time) if time < $START;

    my $n = 0;
    while ((my $now = time) < $END) {
        my $idx = int(($now - $START) * $RATE);
        $idx = $POOL - 1 if $idx >= $POOL;

        # the current token of the pool
        my @r = $ng->request('POST', "/tools/refund?order=t$idx&amount=10",
            headers => [ 'Content-Type' => 'application/json',
                         'Approval-Token' => $tokens[$idx] ],
            body => $BODY, timeout => 30);
        print $out join(' ', 'T', $idx, kind(\@r)), "\n";

        # a replay of an earlier one
        if ($idx > 0 && $n % 2 == 0) {
            my $old = int rand $idx;
            @r = $ng->request('POST', "/tools/refund?order=t$old&amount=10",
                headers => [ 'Content-Type' => 'application/json',
                             'Approval-Token' => $tokens[$old] ],
                body => $BODY, timeout => 30);
            print $out join(' ', 'R', $old, kind(\@r)), "\n";
        }

        # a retry of a pending approval: with its handle, or bare for
        # those that are not approved during the run
        if ($n % 3 == 0) {
            my $p = int rand $P;
            my $bare = $p >= $APPROVED && rand() < 0.5;
            @r = $ng->request('POST', '/ciba/refund?order=p' . ($p + 1),
                headers => [ 'X-User' => 'p' . ($p + 1),
                             $bare ? () : ('Approval-Handle' => $handles[$p]) ],
                body => $BODY, timeout => 30);
            my $h = json_of($r[2])->{approval_handle} // '';
            my $same = ($r[0] // 0) == 401
                       ? ($h eq $handles[$p] ? 'same' : 'other') : '-';
            print $out join(' ', $bare ? 'B' : 'H', $p, kind(\@r), $same),
                       "\n";
        }
        $n++;
    }
    close $out;
}

my @kids;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $ok = eval { client($c); 1 };
        warn "client $c: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    push @kids, $pid;
}


# ---- the reloads -------------------------------------------------------------

my ($reloads, @failed, %generations) = (0);
my $approved_at;
$generations{$_} = 0 for $ng->worker_pids;

sleep($START - time) if time < $START;
while (time < $END - 0.5) {
    my $next = int(time) + 1;
    sleep($next - time) if $next > time;
    last if time >= $END - 0.5;

    if (!$approved_at && time >= $START + $DURATION / 2) {
        as(POST => '/_admin/approve', { auth_req_id => $ids[$_] })
            for 0 .. $APPROVED - 1;
        $approved_at = time;
    }

    if ($ng->reload) {
        $reloads++;
        $generations{$_} = $reloads for $ng->worker_pids;
    } else {
        push @failed, $ng->error;
    }
}

for my $pid (@kids) {
    waitpid $pid, 0;
    is($? >> 8, 0, "client process $pid ran to the end");
}
my $ran = time - $START;

is(scalar @failed, 0, 'every reload brought up a new generation')
    or diag join "\n", @failed;
cmp_ok($reloads, '>=', int($DURATION * 0.6),
       "reloads: $reloads in about $DURATION s");
ok($approved_at, "$APPROVED approvals approved at the AS half-way");


# ---- the answers -------------------------------------------------------------

my (%tok, %hnd, @bad_tok, @bad_hnd, %kinds, $lines);
for my $c (1 .. $CLIENTS) {
    open my $in, '<', "$logs/client-$c.txt" or die "client-$c.txt: $!";
    while (<$in>) {
        chomp;
        $lines++;
        my ($what, $i, $kind) = /^(\w) (\d+) (.*?)(?: (?:same|other|-))?$/
            or die "bad line: $_";
        $kinds{"$what $kind"}++;
        if ($what eq 'T' || $what eq 'R') {
            $tok{$i}{$kind}++;
            push @bad_tok, $_ unless $kind eq '200'
                || $kind eq '403 approval_replayed jti_replayed';
        } else {
            $hnd{$i}{$kind}++;
            push @bad_hnd, $_ if / other$/
                || !($kind eq '200'
                     || $kind eq '403 approval_replayed auth_req_id_replayed'
                     || $kind =~ /^401 approval_pending (?:not_yet|requesting|authorization_pending)$/);
            $hnd{$i}{bare}++ if $what eq 'B';
        }
    }
}

diag sprintf '%d requests in %.1f s (%.0f/s), %d reloads; %s', $lines, $ran,
             $lines / $ran, $reloads,
             join ', ', map { "$_: $kinds{$_}" } sort keys %kinds;

my @used = sort { $a <=> $b } keys %tok;
cmp_ok(scalar @used, '>=', int($DURATION * $RATE * 0.5),
       scalar(@used) . ' tokens of the pool were used');
is_deeply([ grep { ($tok{$_}{200} // 0) != 1 } @used ], [],
          'each token used was admitted exactly once');
is_deeply(\@bad_tok, [], 'every other use was 403 approval_replayed, '
                         . 'jti_replayed')
    or diag join "\n", @bad_tok[0 .. ($#bad_tok > 20 ? 20 : $#bad_tok)];
{
    my $uses = 0;
    $uses += $_ for map { values %$_ } values %tok;
    cmp_ok($uses - @used, '>', scalar @used,
           'more replays than first uses (' . ($uses - @used) . ')');
}

is_deeply(\@bad_hnd, [], 'retries of the approvals: pending with their '
                         . 'handle, admitted, or replays; nothing else')
    or diag join "\n", @bad_hnd[0 .. ($#bad_hnd > 20 ? 20 : $#bad_hnd)];
is_deeply([ grep { ($hnd{$_}{200} // 0) > 1 } 0 .. $P - 1 ], [],
          'no approval was admitted twice');
is_deeply([ grep { $hnd{$_}{200} } $APPROVED .. $P - 1 ], [],
          'no approval that was not approved passed');
ok(!grep({ !$hnd{$_}{bare} } $APPROVED .. $P - 1),
   'bare retries were sent for each approval not approved');


# ---- the logs ----------------------------------------------------------------

my $log = $ng->error_log;
{
    my (%approved, %replayed, %pids);
    for (decision_lines($log, qr/jti="soak-/)) {
        my ($d, $jti) = /decision=(\w+) .* jti="([^"]*)"/ or next;
        $approved{$jti}++ if $d eq 'approved';
        $replayed{$jti}++ if $d eq 'replayed';
        $pids{$1}++ if /\[\w+\] (\d+)#/;
    }
    is_deeply([ grep { ($approved{ $jtis[$_] } // 0) != 1 } @used ], [],
              'the log: one decision=approved line per token used');
    is_deeply([ grep { !exists $tok{$_} } map { /^soak-\d+-(\d+)$/ ? $1 : () }
                keys %approved ], [],
              'the log: no approval for a token the clients did not use');
    my $uses = 0;
    $uses += $_ for map { values %$_ } values %tok;
    my $rep = 0;
    $rep += $_ for values %replayed;
    is($rep, $uses - @used, "the log: $rep decision=replayed lines, one "
                            . 'per replay answered');
    cmp_ok(scalar keys %pids, '>=', 2 * ($reloads / 2),
           scalar(keys %pids) . ' worker processes decided (generations)');
}

unlike($log, qr/exited on signal/, 'no worker crashed');
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no [alert], [crit] or [emerg]')
    or diag join '', grep { /\[(?:alert|crit|emerg)\]/ } split /^/, $log;
is($ng->crash_reports, '', 'no crash reports');


# ---- the approvals survived ----------------------------------------------------

is(as_count('/bc-authorize'), $P,
   "the AS got $P backchannel requests, no second one");
{
    my %known = map { ($_ => 1) } @ids;
    my @tok = as_reqs('/token');
    is_deeply([ grep { !$known{ $_->{form}{auth_req_id} // '' } } @tok ], [],
              'every token request was for one of the approvals');
    diag scalar(@tok) . ' token requests during the run';
}

sub retry {
    my ($i, %o) = @_;
    my @r = $ng->request('POST', "/ciba/refund?order=p$i",
        headers => [ 'X-User' => "p$i",
                     $o{bare} ? () : ('Approval-Handle' => $handles[$i - 1]) ],
        body => $BODY);
    return \@r;
}

sub poll_until_decided {
    my ($i) = @_;
    my $r;
    wait_until(sub { $r = retry($i); ($r->[0] // 0) != 401 }, 15);
    return $r;
}

for my $i (1 .. $APPROVED) {
    my $r = poll_until_decided($i);
    my $before = $hnd{ $i - 1 }{200} // 0;
    if ($before) {
        is(kind($r), '403 approval_replayed auth_req_id_replayed',
           "approval p$i: admitted during the run, now a replay");
    } else {
        is(kind($r), '200', "approval p$i: admitted now, once");
        is($r->[2], "upstream ran p$i\n", "approval p$i: the upstream's answer");
    }
}

for my $i ($APPROVED + 1 .. $P) {
    my $r = retry($i, bare => 1);
    like(kind($r), qr/^401 approval_pending (?:not_yet|authorization_pending)$/,
         "approval p$i: a bare retry is still pending");
    is(json_of($r->[2])->{approval_handle}, $handles[$i - 1],
       "approval p$i: ... with the handle of before the reloads");
    as(POST => '/_admin/approve', { auth_req_id => $ids[$i - 1] });
    $r = poll_until_decided($i);
    is(kind($r), '200', "approval p$i: approved now, the handle passes");
    $r = retry($i);
    is(kind($r), '403 approval_replayed auth_req_id_replayed',
       "approval p$i: then a replay");
}

is(as_count('/bc-authorize'), $P, 'still no second backchannel request');

stop_ok($ng, $state);
unlike($ng->error_log, qr/exited on signal|\[(?:alert|crit|emerg)\]/,
       'nothing bad at the stop');

note sprintf 'took %.1f s', time - $T0;

done_testing;
