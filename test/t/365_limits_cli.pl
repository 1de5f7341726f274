# The bounds of vproxy-transcode on its command line (--nice, --threads,
# --memory-limit) and in the job spec's "limits" object: applied to the
# process itself (read from /proc while it runs), checked (bad values are
# exit 64), and a run over its memory limit ends in exit 75 with "out of
# memory" and no output left behind.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;
use VproxyTest::Media qw(run_transcode proxy_threads);
use VproxyTest::Job;

my $asan = ($ENV{VPROXY_TRANSCODE} // '') =~ /asan/;
my $dir = tempdir('vproxy-limits-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $clip = "$dir/clip.mp4";
system(qw(ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30
	  -f lavfi -i sine=frequency=440:sample_rate=44100 -t 4 -c:v libx264 -preset ultrafast
	  -c:a aac -pix_fmt yuv420p), $clip) == 0 or die 'ffmpeg failed';

# The nice value in a /proc stat file (of a process or one of its threads).
sub nice_of
{
	my ($stat_file) = @_;
	open my $fh, '<', $stat_file or return;
	my $stat = <$fh>;
	close $fh;
	$stat =~ s/^.*\) //s;
	return (split / /, $stat)[16];
}

# Read a running process's bounds from /proc.
sub bounds_of
{
	my ($pid) = @_;
	my %b;
	$b{nice} = nice_of("/proc/$pid/stat") // return;
	open my $fh, '<', "/proc/$pid/oom_score_adj" or return;
	chomp($b{oom} = <$fh>);
	close $fh;
	open $fh, '<', "/proc/$pid/limits" or return;
	($b{limit}) = join('', <$fh>) =~ /^Max address space\s+(\S+)/m;
	close $fh;
	# one listing of the threads for their count and their nice values
	my @tasks = glob "/proc/$pid/task/*";
	$b{threads} = scalar(@tasks);
	$b{thread_nice} = [sort { $a <=> $b } map { nice_of("$_/stat") } @tasks];
	chomp($b{io} = `ionice -p $pid 2>&1`);
	return \%b;
}

# the options of proxy, looked at in the middle of the run
my $seen;
my $r = run_transcode({ on_progress => sub {
			my ($line, $pid) = @_;
			$seen //= bounds_of($pid) if $line =~ /^progress 0\.[3-9]/;
		} },
	'proxy', $clip, "$dir/out.mp4", qw(--preset veryslow --nice 12 --threads 2 --memory-limit 1073741824));
is($r->{status}, 0, 'proxy with --nice, --threads and --memory-limit succeeds') or diag($r->{stderr});
ok($seen, 'looked at the running process');
my $base = getpriority(0, 0);
is($seen->{nice}, $base > 12 ? $base : 12, '--nice 12: the process runs at nice 12');
is($seen->{io}, 'best-effort: prio 7', 'and at the lowest best-effort IO priority');
is($seen->{oom}, 1000, 'oom_score_adj 1000');
SKIP:
{
	skip 'ASan builds set no address-space limit', 1 if $asan;
	is($seen->{limit}, 1073741824, '--memory-limit: the address-space limit');
}
is($seen->{threads}, proxy_threads(2), '--threads 2: the pipeline\'s two threads and the decoder\'s frame threads');
is_deeply($seen->{thread_nice}, [sort { $a <=> $b } ($seen->{nice}, map { $seen->{nice} + 6 > 19 ? 19 : $seen->{nice} + 6 } 2 .. $seen->{threads})],
	'the encoding thread at the process\'s nice value, the decoding threads 6 levels below it');

# without options: priorities unchanged, the default 4 GiB, threads for the cores
undef $seen;
$r = run_transcode({ on_progress => sub {
			my ($line, $pid) = @_;
			$seen //= bounds_of($pid) if $line =~ /^progress 0\.[3-9]/;
		} },
	'proxy', $clip, "$dir/out.mp4", qw(--preset veryslow));
is($r->{status}, 0, 'proxy without limits succeeds');
is($seen->{nice}, $base, 'no --nice: the priority is left alone');
is($seen->{io}, `ionice -p $$` =~ s/\n//r, 'and so is the IO priority');
SKIP:
{
	skip 'ASan builds set no address-space limit', 1 if $asan;
	is($seen->{limit}, 4 * 1024 * 1024 * 1024, 'the default address-space limit is 4 GiB');
}

# bad values are usage errors
for my $bad (['--nice', '20'], ['--nice', '-1'], ['--threads', '-1'], ['--threads', '257'],
	['--memory-limit', '1000'], ['--memory-limit', '10MB'], ['--memory-limit', '4 GiB'],
	['--memory-limit', '-5'], ['--yield-db-cpu', '-1'], ['--yield-to-postmaster', 'x'])
{
	$r = run_transcode('proxy', $clip, "$dir/bad.mp4", @$bad);
	is($r->{status}, 64, "proxy @$bad: exit 64");
	like($r->{last_error}, qr/invalid value for \Q$bad->[0]\E/, "proxy @$bad: says which option");
}
$r = run_transcode('probe', $clip, '--nice', '-5');
is($r->{last_error}, 'vproxy-transcode: invalid value for --nice: -5: nice must be a whole number from 0 to 19',
	'the words of the check vproxy-worker shares');
$r = run_transcode('probe', $clip, '--threads', '1', '--nice', '3', '--memory-limit', '4GB');
is($r->{status}, 0, 'probe takes the limit options, sizes with units');
$r = run_transcode('probe', $clip, '--threads=1', '--memory-limit=512MB');
is($r->{status}, 0, 'and in the --option=value form');
$r = run_transcode('probe', $clip, '--height', '3');
is($r->{status}, 64, 'probe refuses other options');
$r = run_transcode('thumbnail', $clip, "$dir/t.jpg", '--threads', '1', '--memory-limit', '0');
is($r->{status}, 0, 'thumbnail takes the limit options (0 = no memory limit)');

# the job spec's limits
my $store = "$dir/store";
mkdir $store;
mkdir "$store/up";
system('cp', $clip, "$store/up/clip.mp4") == 0 or die;
for my $bad ({ nice => 20 }, { threads => -1 }, { memory_limit_bytes => 1000 }, { nice => 'x' }, { threads => 1.5 },
	{ yield_db_cpu => -1 }, { yield_to_postmaster => -2 })
{
	my $res = run_job(job_spec($store, 'up/clip.mp4', limits => $bad));
	my $text = JSON::PP->new->canonical->encode($bad);
	is($res->{status}, 64, "limits $text: exit 64");
	like($res->{last_error}, qr/job spec: .*(limits|nice|threads|memory_limit_bytes|yield)/, "limits $text: named");
}
my $res = run_job(job_spec($store, 'up/clip.mp4', limits => { nice => 7, threads => 1, memory_limit_bytes => 2 ** 31 }));
is($res->{status}, 0, 'a job with limits succeeds') or diag($res->{stderr});

# over the memory limit: one 8K 4:4:4 10-bit frame is 200 MB
SKIP:
{
	skip 'ASan builds set no address-space limit', 4 if $asan;
	my $big = "$dir/8k.mp4";
	system(qw(ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=7680x4320:rate=1
		  -t 1 -c:v libx264 -preset ultrafast -pix_fmt yuv444p10le), $big) == 0 or die 'ffmpeg failed';
	$r = run_transcode('proxy', $big, "$dir/big.mp4", '--threads', '1', '--memory-limit', 300 << 20);
	is($r->{status}, 75, 'over --memory-limit: exit 75 (worth a retry)');
	like($r->{last_error}, qr/out of memory/, "the cause says out of memory: $r->{last_error}");
	is_deeply([ glob("$dir/.*big* $dir/*big*") ], [], 'no output or temporary file left');
	$r = run_transcode('proxy', $big, "$dir/big.mp4", '--threads', '1');
	is($r->{status}, 0, 'the same file within the default limit succeeds');
}

done_testing();
