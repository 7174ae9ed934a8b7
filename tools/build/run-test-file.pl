#!/usr/bin/env perl
# prove --exec for the project's own Test::Nginx runner (t/lib): runs one
# test file, then fails it if it left a process, a writer or an entry the
# real Test::Nginx cannot remove in the server root behind
# (t/lib/Test/Nginx/FileGuard.pm says how).  tools/build/run-tests.sh uses
# it only when it runs the suite with t/lib.
#
# usage: run-test-file.pl TEST_FILE [ARGS...]
use strict;
use warnings;

use FindBin ();
use lib "$FindBin::Bin/../../t/lib";

use Test::Nginx::FileGuard ();

exit Test::Nginx::FileGuard::run(@ARGV);
