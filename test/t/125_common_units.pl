# The unit tests of the plain-C room src/common, and of vproxy-transcode's
# sandbox (test/unit/*_test.c): each program is built here with every file of
# src/common and OpenSSL's hash functions as vproxy-transcode passes them to
# the presigner (src/storage/openssl_hashes.c), plus what %links names, and
# its TAP lines are taken over one by one.
use strict;
use warnings;
use File::Temp qw(tempdir);
use FindBin;
use Test::More;

# (the tree this test is in: TESTDIR may be another directory)
my $top = "$FindBin::Bin/../..";
my $dir = tempdir(CLEANUP => 1);
my @common = (glob("$top/src/common/*.c"), "$top/src/storage/openssl_hashes.c");
my @tests = sort glob("$top/test/unit/*_test.c");
# what a test needs beyond src/common
my %links = (sandbox => ["$top/src/transcode/sandbox.c", '-lseccomp', '-pthread']);
ok(@tests > 0, 'there are unit tests');

for my $source (@tests)
{
	my ($name) = $source =~ m{([^/]+)_test\.c$};
	my $program = "$dir/$name";
	my $built = system($ENV{CC} // 'cc', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-g',
		"-I$top/src", "-I$top/test/unit", '-o', $program, $source, @common, '-lcrypto',
		@{ $links{$name} // [] });
	is($built, 0, "$name: the unit test builds") or next;
	my @lines = `$program`;
	my $status = $?;
	my $count = 0;
	for my $line (@lines)
	{
		chomp $line;
		if ($line =~ /^(not )?ok \d+ - (.*)$/)
		{
			ok(!defined $1, "$name: $2");
			$count++;
		}
		elsif ($line =~ /^#/)
		{
			diag($line);
		}
	}
	ok($count > 0, "$name: ran $count checks");
	is($status, 0, "$name: exits 0");
}

done_testing();
