# A few commands under valgrind memcheck: no invalid access, no use of
# uninitialised memory, no definite leak.  Needs the release build (valgrind
# cannot run an ASan binary) and a valgrind able to run the system's libav.
use strict;
use warnings;
use Test::More;
use VproxyTest::Media;

plan skip_all => 'valgrind not installed' unless have_program('valgrind');
plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');
my $program = transcode_program();
my $ldd = `ldd "\$(command -v '$program')" 2>/dev/null` // '';
plan skip_all => 'the program under test is built with ASan' if $ldd =~ /libasan/;

# Valgrind 3.19 (Debian 12) stops at instructions it does not know.  On a CPU
# that hides RDTSCP (some virtual machines) libhwy, which libavcodec loads
# through libjxl, runs one in a static initialiser (a timer calibration no
# code path of ours uses), so no libav program at all runs under valgrind.
# Then a two-line stand-in for that one function is preloaded, built here;
# ffprobe under valgrind tells whether it is needed and whether it works.
my $dir = scratch_dir();
my %env;
sub valgrind_runs_ffprobe
{
	local %ENV = (%ENV, @_);
	system('valgrind --quiet ffprobe -version >/dev/null 2>&1');
	return $? == 0;
}
if (!valgrind_runs_ffprobe())
{
	my $shim = "$dir/hwy_timer_shim.so";
	open my $fh, '>', "$dir/hwy_timer_shim.c" or die;
	print $fh "#include <stdint.h>\n",
	  "uint64_t _ZN3hwy8platform15TimerResolutionEv(void);\n",
	  "uint64_t _ZN3hwy8platform15TimerResolutionEv(void) { return 1; }\n";
	close $fh;
	system('cc', '-shared', '-fPIC', '-o', $shim, "$dir/hwy_timer_shim.c") == 0
	  or plan skip_all => 'valgrind cannot run the system libav here and no C compiler for the stand-in';
	%env = (LD_PRELOAD => $shim);
	valgrind_runs_ffprobe(%env)
	  or plan skip_all => 'valgrind cannot run the system libav here (ffprobe -version fails under it)';
	note 'libhwy timer calibration replaced by a stand-in for valgrind';
}

my @valgrind = qw(valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=definite
  --leak-check=full --quiet);

my @runs = (
	[0, 'probe', fixture('hevc10_surround')],
	[0, 'thumbnail', fixture('anamorphic_interlaced_ts'), "$dir/t.jpg"],
	[0, 'proxy', fixture('three_frames'), "$dir/p.mp4", qw(--preset ultrafast)],
	[0, 'proxy', fixture('mjpeg_pcm_avi'), "$dir/q.mp4", qw(--preset ultrafast --height 120)],
	# reference frames held back before each IDR, and skipped (gop_tail.c)
	[0, 'proxy', fixture('phone_short_gop'), "$dir/g.mp4", qw(--preset ultrafast --height 120)],
	[65, 'probe', (bad_input('header_then_garbage'))[0]],
);
for my $run (@runs)
{
	my ($expected, $command, @args) = @$run;
	my $label = "$command " . (split m{/}, $args[0])[-1];
	my $result = run_transcode({ wrapper => \@valgrind, env => \%env }, $command, @args);
	isnt($result->{status}, 99, "valgrind: $label has no memcheck error") or diag $result->{stderr};
	is($result->{status}, $expected, "valgrind: $label exits $expected") or diag $result->{stderr};
}

done_testing();
