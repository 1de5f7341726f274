# A short fuzzing run over probe, thumbnail and proxy (test/fuzz/media_fuzz.c,
# libFuzzer with ASan+UBSan, seeded with the fixture corpus's formats): it
# fails on any crash, sanitizer report, leak, hang (30 s), file left behind,
# or a status other than 0 and 65 for a local file (75 above all).  About a
# minute (2500 inputs); the long campaign is documented in src/media/README.md.
use strict;
use warnings;
use Test::More;
use File::Spec;
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');
plan skip_all => 'clang not installed' unless have_program('clang');
my ($runtime) = glob('/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a');
plan skip_all => 'no libFuzzer runtime (Debian package libclang-rt-dev or clang\'s own)' unless $runtime;

my $top = File::Spec->rel2abs('.');
my $work = scratch_dir();
# a fixed seed and a number of inputs, not of seconds: about the same
# exploration on a fast machine as on a slow one (threads make coverage,
# and so the mutations kept, differ a little from run to run); a limit of
# 20 minutes only keeps a stuck run from holding the suite
$ENV{MEDIA_FUZZ_SEED} //= 1;
$ENV{MEDIA_FUZZ_RUNS} //= 2500;
my $log = "$work/fuzz.log";
system("bash '$top/test/fuzz/run' 1200 '$work' >'$log' 2>&1");
my $status = $? >> 8;
open my $fh, '<', $log or die;
my $output = do { local $/; <$fh> };
is($status, 0, "fuzzing $ENV{MEDIA_FUZZ_RUNS} inputs (seed $ENV{MEDIA_FUZZ_SEED}) found nothing") or diag substr($output, -6000);
my ($runs) = $output =~ /stat::number_of_executed_units:\s*(\d+)/;
ok(($runs // 0) > 0, 'inputs were run (' . ($runs // 0) . ')');
my @found = glob("$work/crash-* $work/leak-* $work/timeout-* $work/oom-* $work/slow-unit-*");
is_deeply(\@found, [], 'no failing input written');
unlike($output, qr/ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|media_fuzz: (?!note)/, 'no report in the log');
# the harness's folder (media-fuzz-*) is checked after every input by the
# harness itself; nothing else may appear beside it, and it ends empty
my @left = grep { !m{/media-fuzz-[^/]+$} } glob("$work/tmp/* $work/tmp/.[!.]*");
push @left, glob("$work/tmp/media-fuzz-*/* $work/tmp/media-fuzz-*/.[!.]*");
is_deeply(\@left, [], 'nothing left in the temporary folder');

done_testing();
