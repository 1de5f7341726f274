# vproxy-transcode on bad and hostile input: each command refuses it with the
# documented exit status and a cause in words, leaves no file behind, and a
# stop request ends a proxy cleanly with exit 75.
use strict;
use warnings;
use Test::More;
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

# The names in a directory.
sub listing
{
	my ($dir) = @_;
	opendir my $dh, $dir or die "$dir: $!";
	return [sort grep { !/^\.\.?$/ } readdir $dh];
}

for my $name (bad_input_names())
{
	my ($path, $status) = bad_input($name);
	for my $command (qw(proxy thumbnail))
	{
		my $outdir = scratch_dir();
		my $ext = $command eq 'proxy' ? 'mp4' : 'jpg';
		my $result = run_transcode($command, $path, "$outdir/out.$ext");
		is($result->{status}, $status, "$command of $name: exit $status");
		like($result->{last_error}, qr/^vproxy-transcode: \w.{8,}/, "$command of $name: the cause in words");
		is_deeply(listing($outdir), [], "$command of $name: nothing left behind");
		is(sanitizer_report($result), '', "$command of $name: no sanitizer report");
	}
}

# what the input's bytes cause is bad media (65, at once), not a reason to
# retry (75): impossible sizes (libav answers ENOMEM) and broken structure
# (libav answers EIO), each named in words by every command
my %causes = (
	mp4_stts_count => qr/impossible amount of memory/,
	mp4_stco_count => qr/impossible amount of memory/,
	mp4_stts_count_7f => qr/impossible amount of memory/,
	mkv_broken_ebml => qr/structure is broken/,
);
for my $name (sort keys %causes)
{
	my ($path) = bad_input($name);
	for my $command (qw(probe proxy thumbnail))
	{
		my $outdir = scratch_dir();
		my @out = $command eq 'probe' ? () : ("$outdir/out." . ($command eq 'proxy' ? 'mp4' : 'jpg'));
		my $result = run_transcode($command, $path, @out);
		is($result->{status}, 65, "$command of $name: exit 65, not 75");
		like($result->{last_error}, $causes{$name}, "$command of $name: says why");
	}
}

# a fragmented MP4 whose first track run claims a sample of 2 GiB: the read
# that meets it fails with ENOMEM, which is the file's fault (65); a thumbnail
# taken before that point is fine
{
	my $dir = scratch_dir();
	my $path = "$dir/trun.mp4";
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=25 -t 2 -c:v libx264 -preset ultrafast -g 10
		-movflags frag_keyframe+empty_moov), "$dir/plain.mp4");
	my $data = VproxyTest::Media::read_file("$dir/plain.mp4");
	my $trun = index($data, 'trun');
	my $flags = unpack('N', substr($data, $trun + 4, 4)) & 0xffffff;
	ok($flags & 0x200, 'the first trun lists sample sizes');
	# after the count: data offset (flag 1), first sample flags (4), then per sample duration (0x100), size
	my $at = $trun + 12 + ($flags & 1 ? 4 : 0) + ($flags & 4 ? 4 : 0) + ($flags & 0x100 ? 4 : 0);
	substr($data, $at, 4) = pack('N', 0x7FFFFFFF);
	VproxyTest::Media::write_file($path, $data);
	for my $command (qw(probe proxy))
	{
		my $result = run_transcode($command, $path, $command eq 'proxy' ? ("$dir/out.mp4") : ());
		is($result->{status}, 65, "$command of a trun sample size of 2 GiB: exit 65");
		like($result->{last_error}, qr/impossible amount of memory/, "$command of a trun sample size of 2 GiB: says why");
	}
	my $result = run_transcode('thumbnail', $path, "$dir/out.jpg");
	ok($result->{status} == 0 || $result->{status} == 65, "thumbnail of a trun sample size of 2 GiB: 0 or 65 ($result->{status})");
}

# really out of memory (a small address-space limit, a 1080i source): 75,
# said in words, whatever step felt it; nothing left behind.  Not with ASan,
# whose shadow memory needs terabytes of address space.
SKIP:
{
	my $program = transcode_program();
	my $ldd = `ldd "\$(command -v '$program')" 2>/dev/null` // '';
	skip 'the program under test is built with ASan', 3 if $ldd =~ /libasan/;
	my $outdir = scratch_dir();
	my $source = fixture('avchd_m2ts');
	my $out = `sh -c 'ulimit -v 320000 && exec "\$0" proxy "\$1" "\$2"' '$program' '$source' '$outdir/out.mp4' 2>&1`;
	my $status = $? >> 8;
	skip 'the program does not even load in 320 MB of address space here', 3 if $status == 127;
	is($status, 75, 'out of memory: exit 75') or diag $out;
	like($out, qr/out of memory/, 'out of memory: says so');
	is_deeply(listing($outdir), [], 'out of memory: nothing left behind');
}

# The tags of an FLV file's bytes: [type, offset] each.
sub flv_tags
{
	my ($data) = @_;
	my ($at, @tags) = (9 + 4);
	while ($at + 11 <= length $data)
	{
		my ($type, $size) = (ord(substr($data, $at, 1)), unpack('N', "\0" . substr($data, $at + 1, 3)));
		push @tags, [$type, $at];
		$at += 11 + $size + 4;
	}
	return @tags;
}

# Set an FLV tag's timestamp (milliseconds, 24 bits + 8 high bits).
sub set_flv_time
{
	my ($data, $at, $ms) = @_;
	substr($$data, $at + 4, 4) = substr(pack('N', $ms), 1, 3) . chr($ms >> 24);
}

# found by fuzzing: an FLV with an audio frame claiming 56 hours (in a file
# stating half a second) fed the AAC encoder from there on, for minutes.
# Made here: a 2 s FLV whose middle audio tag says 56 h (the MP4 muxer then
# refused the proxy: "Invalid argument").  Such a frame is damaged and
# skipped; the proxy lasts the file's 2 s.
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=10 -f lavfi -i sine=sample_rate=44100
		-t 2 -c:v flv1 -c:a libmp3lame), "$dir/plain.flv");
	my $data = VproxyTest::Media::read_file("$dir/plain.flv");
	my @audio = map { $_->[1] } grep { $_->[0] == 8 } flv_tags($data);
	ok(@audio > 10, 'the FLV has audio tags');
	set_flv_time(\$data, $audio[@audio / 2], 0x0C000000);
	VproxyTest::Media::write_file("$dir/far.flv", $data);
	my $result = run_transcode('proxy', "$dir/far.flv", "$dir/out.mp4");
	is($result->{status}, 0, 'FLV audio tag at 56 h: proxy made') or diag $result->{stderr};
	cmp_ok(ffprobe_json("$dir/out.mp4")->{format}{duration} // 1e9, '<', 3, 'FLV audio tag at 56 h: the proxy lasts the file\'s 2 s')
	  if -e "$dir/out.mp4";
}

# found by fuzzing: an FLV whose first tags are stamped after all the others,
# so that every later frame lies before the file's start time.  The audio's
# timestamps going back made the MP4 muxer refuse the proxy (65, "Invalid
# argument"); with them out of the way, both tracks ending before 0 got
# edit lists of negative (wrapped) length, no reader found a frame, and the
# read-back check made it exit 70 (retried, for a file that can never work).
# Audio going back over what was kept is dropped, frames that end before the
# start are trimmed, and the last one is shown at 0.
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=10 -f lavfi -i sine=sample_rate=44100
		-t 1 -c:v flv1 -c:a libmp3lame), "$dir/plain.flv");
	my $data = VproxyTest::Media::read_file("$dir/plain.flv");
	my @tags = flv_tags($data);
	my ($video) = grep { $_->[0] == 9 } @tags;
	my ($audio) = grep { $_->[0] == 8 } @tags;
	set_flv_time(\$data, $_->[1], 2500) for $video, $audio;
	VproxyTest::Media::write_file("$dir/back.flv", $data);
	my $result = run_transcode('proxy', "$dir/back.flv", "$dir/out.mp4");
	is($result->{status}, 0, 'FLV going back before its start: proxy made') or diag $result->{stderr};
	if ($result->{status} == 0)
	{
		my $log = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -hide_banner -i), "$dir/out.mp4", qw(-f null -));
		my ($frames) = $log =~ /frame=\s*(\d+)/;
		cmp_ok($frames // 0, '>', 0, 'FLV going back before its start: ffmpeg decodes the proxy\'s frames');
		my @streams = @{ ffprobe_json("$dir/out.mp4")->{streams} };
		is(scalar(grep { abs($_->{start_time} // 1) < 1e-6 } @streams), 2,
			'FLV going back before its start: picture and sound start at 0');
	}
}

# found by fuzzing: an IVF whose time base makes one tick last a year states
# a duration of years; the proxy filled it with copies of a frame until it
# ran out of memory.  A stated duration over 48 h is no statement: the
# timestamps are measured, and spanning years, refused at once (65).
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=64x48:rate=10 -t 0.5 -c:v libvpx -f ivf), "$dir/plain.ivf");
	my $data = VproxyTest::Media::read_file("$dir/plain.ivf");
	substr($data, 16, 8) = pack('VV', 1, 365 * 86400);    # time base: 365 days per tick
	VproxyTest::Media::write_file("$dir/years.ivf", $data);
	for my $command (qw(probe proxy))
	{
		my @out = $command eq 'proxy' ? ("$dir/out.mp4") : ();
		my $result = run_transcode({ wrapper => [qw(timeout -s KILL 120)] }, $command, "$dir/years.ivf", @out);
		is($result->{status}, 65, "IVF stating years: $command exits 65") or diag $result->{stderr};
		like($result->{last_error}, qr/span \d+ hours/, "IVF stating years: $command says the timestamps span too long");
	}
}

# The MPEG-TS packets of a PID that start a PES packet: offsets of their PES headers.
sub pes_starts
{
	my ($data, $pid) = @_;
	my @starts;
	for (my $at = 0; $at + 188 <= length $$data; $at += 188)
	{
		my ($flags, $control) = unpack('x n C', substr($$data, $at, 4));
		next unless ($flags & 0x1fff) == $pid && ($flags & 0x4000);
		my $payload = $at + 4 + (($control & 0x20) ? 1 + ord(substr($$data, $at + 4, 1)) : 0);
		push @starts, $payload if substr($$data, $payload, 3) eq "\0\0\1";
	}
	return @starts;
}

# Write a 33-bit PES timestamp (90 kHz) with its 4-bit prefix at $at.
sub set_pes_time
{
	my ($data, $at, $prefix, $ts) = @_;
	substr($$data, $at, 5) = pack('C5', ($prefix << 4) | ((($ts >> 30) & 7) << 1) | 1, ($ts >> 22) & 0xff,
		((($ts >> 15) & 0x7f) << 1) | 1, ($ts >> 7) & 0xff, (($ts & 0x7f) << 1) | 1);
}

# found by fuzzing (this round's re-based timestamps): an MPEG-TS whose
# second frame is decoded 13 minutes after the first (a jump, re-based to
# follow it) and shown 17 hours after it is decoded.  Only the dts is
# re-based, as in the CLI, so the measured duration ran to that pts: 17
# hours of a copied frame, 45 s of a 64x48 proxy.  A pts further than 10 s
# from its dts is damaged: the duration follows the dts, and the frame is
# skipped like any other far outside the duration.
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=64x48:rate=10 -f lavfi -i sine=sample_rate=22050
		-t 1 -c:v mpeg2video -bf 2 -c:a mp2 -f mpegts), "$dir/plain.ts");
	my $data = VproxyTest::Media::read_file("$dir/plain.ts");
	my @pes = grep { (ord(substr($data, $_ + 7, 1)) >> 6) == 3 } pes_starts(\$data, 0x100);
	die "no PES with both timestamps" unless @pes >= 2;
	my $dts = (11.4 + 780) * 90000;
	set_pes_time(\$data, $pes[1] + 9, 3, $dts + 61000 * 90000);
	set_pes_time(\$data, $pes[1] + 14, 1, $dts);
	VproxyTest::Media::write_file("$dir/far_pts.ts", $data);
	my $probe = run_transcode('probe', "$dir/far_pts.ts");
	is($probe->{status}, 0, 'TS frame shown 17 h after it is decoded: probe succeeds') or diag $probe->{stderr};
	cmp_ok($probe->{json}{duration_seconds} // 1e9, '<', 3, "TS frame shown 17 h after it is decoded: probe says about the file's 1 s ($probe->{json}{duration_seconds})");
	my $result = run_transcode({ wrapper => [qw(timeout -s KILL 120)] }, 'proxy', "$dir/far_pts.ts", "$dir/out.mp4");
	is($result->{status}, 0, 'TS frame shown 17 h after it is decoded: proxy made') or diag $result->{stderr};
	cmp_ok(ffprobe_json("$dir/out.mp4")->{format}{duration} // 1e9, '<', 3, 'TS frame shown 17 h after it is decoded: the proxy lasts about 1 s');
}

# Set the timestamps of the PES packet at $at (one header): $pts, and $dts
# when it has one.
sub set_pes_times
{
	my ($data, $at, $pts, $dts) = @_;
	my $flags = ord(substr($$data, $at + 7, 1)) >> 6;
	set_pes_time($data, $at + 9, $flags == 3 ? 3 : 2, $pts);
	set_pes_time($data, $at + 14, 1, $dts) if $flags == 3;
}

# found by fuzzing (this round's re-based timestamps): an MPEG-TS whose
# first video frame is stamped before everything else but read after the
# first audio (the fuzzed file: 25 hours before).  The CLI re-bases that
# frame to follow the audio, and so does vproxy, but the file's start time
# (libavformat's: the earliest raw timestamp) stayed back there, and the
# proxy showed the frame from there on.  Where timestamps jumped, the start
# is the earliest re-based time.  Made here: a 1 s TS at 100 s whose first
# video PES says 45 s (55 s back: libavformat takes a timestamp over 60 s
# back for a wrap of its 33-bit clock); the proxy lasted 57 s.
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=64x48:rate=10 -f lavfi -i sine=sample_rate=22050
		-t 1 -c:v libx264 -preset ultrafast -c:a mp2 -output_ts_offset 100 -f mpegts), "$dir/plain.ts");
	my $data = VproxyTest::Media::read_file("$dir/plain.ts");
	my ($video) = pes_starts(\$data, 0x100);
	set_pes_times(\$data, $video, 45 * 90000, 45 * 90000);
	VproxyTest::Media::write_file("$dir/early.ts", $data);
	my $probe = run_transcode('probe', "$dir/early.ts");
	is($probe->{status}, 0, 'TS first frame 55 s early: probe succeeds') or diag $probe->{stderr};
	cmp_ok($probe->{json}{duration_seconds} // 1e9, '<', 3, "TS first frame 55 s early: probe says about the file's 1 s ($probe->{json}{duration_seconds})");
	my $result = run_transcode('proxy', "$dir/early.ts", "$dir/out.mp4");
	is($result->{status}, 0, 'TS first frame 55 s early: proxy made') or diag $result->{stderr};
	cmp_ok(ffprobe_json("$dir/out.mp4")->{format}{duration} // 1e9, '<', 3, 'TS first frame 55 s early: the proxy lasts about 1 s');
}

# a missing input is 66 for every command
for my $command (qw(probe proxy thumbnail))
{
	my $outdir = scratch_dir();
	my @args = $command eq 'probe' ? () : ("$outdir/out");
	my $result = run_transcode($command, "$outdir/missing.mp4", @args);
	is($result->{status}, 66, "$command of a missing file: exit 66");
	is_deeply(listing($outdir), [], "$command of a missing file: nothing left behind");
}

# a directory is not an input
is(run_transcode('probe', scratch_dir())->{status}, 65, 'a directory: exit 65');

# an output folder that does not exist: an internal failure, not bad media
{
	my $outdir = scratch_dir();
	my $result = run_transcode('proxy', fixture('three_frames'), "$outdir/no/such/dir/out.mp4");
	is($result->{status}, 70, 'output folder missing: exit 70');
	like($result->{last_error}, qr/cannot create/, 'output folder missing: says so');
}

# a stop request (SIGTERM) during a proxy: exit 75, nothing left behind
for my $signal (qw(TERM INT))
{
	my $outdir = scratch_dir();
	my $sent = 0;
	my $result = run_transcode(
		{
			on_progress => sub {
				my ($line, $pid) = @_;
				kill $signal, $pid if !$sent++ && $line =~ /^progress /;
			}
		},
		'proxy', fixture('phone_rotated'), "$outdir/out.mp4", '--preset', 'veryslow');
	ok($sent, "SIG$signal sent while the proxy was running");
	is($result->{status}, 75, "SIG$signal: exit 75");
	like($result->{last_error}, qr/stopped/, "SIG$signal: says it was stopped");
	is_deeply(listing($outdir), [], "SIG$signal: nothing left behind");
}

# a stop request while the proxy fills a long gap (three frames, the last at
# 30 minutes: 18,000 copies of the second, made after the whole input has
# been read) ends it there, not at the end of the fill
{
	my $dir = scratch_dir();
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=10:duration=0.3),
		'-vf', 'setpts=if(eq(N\,2)\,1800/TB\,PTS)', qw(-fps_mode passthrough -c:v mpeg4), "$dir/gap.mkv");
	my ($sent, $last) = (0, 0);
	my $result = run_transcode(
		{
			on_progress => sub {
				my ($line, $pid) = @_;
				($last) = $line =~ /^progress ([\d.]+)/ or return;
				kill 'TERM', $pid if $last >= 0.1 && !$sent++;
			}
		},
		'proxy', "$dir/gap.mkv", "$dir/out.mp4");
	ok($sent, 'SIGTERM sent while the proxy filled the gap');
	is($result->{status}, 75, 'SIGTERM in a gap: exit 75');
	cmp_ok($last, '<', 0.5, "SIGTERM in a gap: stopped there (last progress $last)");
}

# a successful run leaves exactly the output
{
	my $outdir = scratch_dir();
	is(run_transcode('proxy', fixture('three_frames'), "$outdir/p.mp4")->{status}, 0, 'proxy of three frames');
	is(run_transcode('thumbnail', fixture('three_frames'), "$outdir/t.jpg")->{status}, 0, 'thumbnail of three frames');
	is_deeply(listing($outdir), ['p.mp4', 't.jpg'], 'only the outputs are left');
}

# an existing output is replaced whole
{
	my $outdir = scratch_dir();
	open my $fh, '>', "$outdir/p.mp4" or die;
	print $fh 'old content';
	close $fh;
	is(run_transcode('proxy', fixture('three_frames'), "$outdir/p.mp4")->{status}, 0, 'proxy over an old file');
	is((top_level_boxes("$outdir/p.mp4"))[0], 'ftyp', 'the old file was replaced');
}

# Absurd timestamps: a fragmented MP4 whose first fragments start at a small
# offset (so the file has a start time to subtract) and whose later
# fragments claim decode times near the ends of int64.  Shifting, summing or
# comparing them must not overflow (the ASan+UBSan build aborts on that):
# each command exits cleanly, 0 or 65, never on a signal.
sub box_list
{
	my ($data, $start, $end) = @_;
	my @boxes;
	while ($start + 8 <= $end)
	{
		my ($size, $type) = unpack 'Na4', substr($data, $start, 8);
		last if $size < 8 || $start + $size > $end;
		push @boxes, [$type, $start, $size];
		$start += $size;
	}
	return @boxes;
}

# Copy $in to $out with each track's tfdt (version 1) set by $time->(track, fragment number).
sub retime_fragments
{
	my ($in, $out, $time) = @_;
	my $data = VproxyTest::Media::read_file($in);
	my %fragments;
	for my $moof (grep { $_->[0] eq 'moof' } box_list($data, 0, length $data))
	{
		for my $traf (grep { $_->[0] eq 'traf' } box_list($data, $moof->[1] + 8, $moof->[1] + $moof->[2]))
		{
			my ($track, $tfdt);
			for my $box (box_list($data, $traf->[1] + 8, $traf->[1] + $traf->[2]))
			{
				$track = unpack 'N', substr($data, $box->[1] + 12, 4) if $box->[0] eq 'tfhd';
				$tfdt = $box->[1] if $box->[0] eq 'tfdt';
			}
			die "no tfhd/tfdt v1 in a traf of $in" unless defined $track && defined $tfdt
			  && ord(substr($data, $tfdt + 8, 1)) == 1;
			substr($data, $tfdt + 12, 8) = pack 'q>', $time->($track, $fragments{$track}++);
		}
	}
	die "$in: fewer fragments than expected" unless (grep { $_ >= 3 } values %fragments) == 2;
	VproxyTest::Media::write_file($out, $data);
}

{
	my $dir = scratch_dir();
	my $plain = "$dir/fragmented.mp4";
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=160x120:rate=25 -f lavfi -i sine=sample_rate=8000
		-t 3 -c:v libx264 -preset ultrafast -g 25 -c:a aac
		-movflags frag_keyframe+empty_moov+default_base_moof), $plain);
	my $int64_max = 9223372036854775807;
	my %cases = (
		near_int64_min => sub { $_[1] == 0 ? 100000 : -$int64_max + 1000 * $_[1] },
		near_int64_max => sub { $_[1] == 0 ? 100000 : $int64_max - 100000 + 1000 * $_[1] },
	);
	for my $case (sort keys %cases)
	{
		my $path = "$dir/$case.mp4";
		retime_fragments($plain, $path, $cases{$case});
		for my $command (qw(probe proxy thumbnail))
		{
			my $outdir = scratch_dir();
			my @out = $command eq 'probe' ? () : ("$outdir/out." . ($command eq 'proxy' ? 'mp4' : 'jpg'));
			my $result = run_transcode($command, $path, @out);
			ok($result->{status} == 0 || $result->{status} == 65,
				"timestamps $case, $command: exit 0 or 65, not a crash (got $result->{status})")
			  or diag $result->{stderr};
			is(sanitizer_report($result), '', "timestamps $case, $command: no sanitizer report");
			if ($result->{status} == 65)
			{
				like($result->{last_error}, qr/^vproxy-transcode: \w.{8,}/, "timestamps $case, $command: the cause in words");
				is_deeply(listing($outdir), [], "timestamps $case, $command: nothing left behind");
			}
			elsif ($command eq 'proxy')
			{
				my $video = video_stream(ffprobe_json($out[0]));
				is($video && $video->{codec_name}, 'h264', "timestamps $case, proxy: ffprobe reads an H.264 proxy");
			}
		}
	}
}

done_testing();
