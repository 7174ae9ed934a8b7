# Self-test of the project's Test::Nginx replacement (t/lib): master_on()
# with two workers.
use FindBin ();
use lib "$FindBin::Bin/../lib";    # always this runner, even if the real one is installed
use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
worker_connections(128);
run_tests();

__DATA__

=== TEST 1: a master and two workers
--- config
    location = /pid { return 200 "$pid\n"; }
--- init
open my $in, '<', $Test::Nginx::Util::PidFile or die "no pid file: $!";
chomp(my $master = <$in>);
# the master writes its pid file before it forks the workers
my @workers;
for (1 .. 100) {
    opendir my $proc, '/proc' or die $!;
    @workers = ();
    for my $pid (grep { /^\d+$/ } readdir $proc) {
        open my $st, '<', "/proc/$pid/stat" or next;
        push @workers, $pid if (split ' ', scalar <$st>)[3] == $master;
    }
    last if @workers >= 2;
    Time::HiRes::sleep(0.05);
}
Test::More::is(scalar @workers, 2, 'two worker processes');
open $in, '<', $Test::Nginx::Util::ConfFile or die $!;
my $conf = do { local $/; <$in> };
Test::More::like($conf, qr/^master_process on;$/m, 'master_process on');
Test::More::like($conf, qr/^\s*worker_connections\s+128;$/m, 'worker_connections');
--- request
GET /pid
--- response_body_like: ^\d+$
--- error_log eval
qr/start worker process \d+/
--- no_error_log
[emerg]
