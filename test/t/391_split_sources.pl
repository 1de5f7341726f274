# The pieces of a split proxy on the sources that break naive chunked
# encoders, against the single pass: with lossless x264 (--crf 0) the
# decoded frames of the stitched proxy must equal the single pass's, and its
# audio packets must be the single pass's.  Variable frame rate phone footage
# (rotated), open-GOP HEVC, audio that starts before the video, interlaced
# MPEG-2 in MPEG-TS (a demuxer that seeks roughly), a picture size change
# mid-stream, a last segment of one frame.  Then what the stitch refuses.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VproxyTest::Media;

my $dir = PostgreSQL::Test::Utils::tempdir();
my @exact = qw(--crf 0 --preset ultrafast);

# name => [ffmpeg arguments making it (or a sub), segment seconds]
my %sources = (
	vfr_rotated_phone => [ sub {
		my ($path) = @_;
		VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i),
			'sine=frequency=440:sample_rate=44100', '-t', '24', '-vf',
			"setpts='(N+0.4*sin(N))/30/TB',select='not(between(n\\,100\\,130))'",
			qw(-fps_mode vfr -c:v libx264 -preset veryfast -g 45 -c:a aac -ac 2), "$dir/plain.mp4");
		VproxyTest::Media::ffmpeg('-i', "$dir/plain.mp4", qw(-c copy -metadata:s:v:0 rotate=90 -f mp4), $path);
	}, 4 ],
	open_gop_hevc => [ [ qw(-f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i),
		'sine=frequency=440:sample_rate=48000', '-t', '24', qw(-c:v libx265 -preset ultrafast -x265-params),
		'log-level=error:open-gop=1:keyint=50:min-keyint=50:bframes=4:scenecut=0', qw(-c:a aac -f matroska) ], 4 ],
	audio_before_video => [ [ qw(-f lavfi -i sine=frequency=440:sample_rate=48000:duration=22 -itsoffset 1.3),
		qw(-f lavfi -i testsrc2=size=320x240:rate=30:duration=20 -c:v libx264 -preset veryfast -c:a aac),
		qw(-f matroska) ], 4 ],
	interlaced_ts => [ [ qw(-f lavfi -i testsrc2=size=720x576:rate=50 -f lavfi -i),
		'sine=frequency=300:sample_rate=48000', '-t', '16', '-vf', 'tinterlace=mode=interleave_top,setsar=16/15',
		qw(-flags +ilme+ildct -top 1 -c:v mpeg2video -g 12 -b:v 4M -c:a mp2 -ac 2 -output_ts_offset 10),
		qw(-f mpegts) ], 4 ],
	size_switch_ts => [ sub {
		my ($path) = @_;
		VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=320x240:rate=25 -t 8 -c:v libx264 -preset ultrafast),
			"$dir/one.ts");
		VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=640x360:rate=25 -t 8 -c:v libx264 -preset ultrafast),
			qw(-output_ts_offset 8), "$dir/two.ts");
		system("cat '$dir/one.ts' '$dir/two.ts' > '$path'") == 0 or die 'cat failed';
	}, 3 ],
	one_frame_last_segment => [ [ qw(-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i),
		'sine=frequency=440:sample_rate=48000', '-t', '12.1', qw(-c:v libx264 -preset veryfast -c:a aac),
		qw(-f mp4) ], 6 ],
);

# The proxy's decoded frames (framemd5 lines) and audio packets, for comparing.
sub fingerprint
{
	my ($file) = @_;
	my $frames = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -v error -i), $file, qw(-an -f framemd5 -));
	my $audio = VproxyTest::Media::run_quiet('ffprobe', qw(-v error -select_streams a
		-show_entries packet=pts,dts,duration,size -of csv), $file);
	return ([ grep { !/^#/ } split /\n/, $frames ], $audio);
}

# Plan, segments, audio and stitch of $source into $output; the segments' reports.
sub split_proxy
{
	my ($name, $source, $seconds, $output) = @_;
	my $plan = VproxyTest::Media::run_transcode('plan', $source, '--segment-seconds', $seconds, @exact);
	is($plan->{status}, 0, "$name: planned") or diag $plan->{stderr};
	my (@chunks, @reports);
	for my $segment (@{ $plan->{json}{segments} })
	{
		my $chunk = "$dir/$name-" . scalar(@chunks) . '.chunk';
		my $made = VproxyTest::Media::run_transcode('segment', $source, $chunk,
			'--first', $segment->{first_slot}, '--next', $segment->{next_slot},
			'--interlaced', $plan->{json}{interlaced} ? 1 : 0, @exact);
		is($made->{status}, 0, "$name: segment from slot $segment->{first_slot}") or diag $made->{stderr};
		push @chunks, $chunk;
		push @reports, $made->{json};
	}
	my $audio = VproxyTest::Media::run_transcode('audio', $source, "$dir/$name.audio", @exact);
	is($audio->{status}, 0, "$name: audio") or diag $audio->{stderr};
	my @with_audio = $audio->{json}{has_audio} ? ('--audio', "$dir/$name.audio") : ();
	my $stitched = VproxyTest::Media::run_transcode('stitch', $output, @with_audio, map { ('--segment', $_) } @chunks);
	is($stitched->{status}, 0, "$name: stitched") or diag $stitched->{stderr};
	return ($plan->{json}, \@reports, \@chunks);
}

my %chunks_of;
for my $name (sort keys %sources)
{
	my ($recipe, $seconds) = @{ $sources{$name} };
	my $source = VproxyTest::Media::make_item("split_$name", $name =~ /_ts$/ ? 'ts' : 'mkv', $recipe);
	my $single = "$dir/$name-single.mp4";
	my $result = VproxyTest::Media::run_transcode('proxy', $source, $single, @exact);
	is($result->{status}, 0, "$name: single pass") or diag $result->{stderr};
	my ($plan, $reports, $chunks) = split_proxy($name, $source, $seconds, "$dir/$name-split.mp4");
	$chunks_of{$name} = $chunks;
	cmp_ok(scalar @$reports, '>=', 3, "$name: " . scalar(@$reports) . ' segments');
	my ($single_frames, $single_audio) = fingerprint($single);
	my ($split_frames, $split_audio) = fingerprint("$dir/$name-split.mp4");
	is(scalar @$split_frames, scalar @$single_frames, "$name: as many frames (" . @$single_frames . ')');
	is_deeply($split_frames, $single_frames, "$name: the same frames at the same times");
	is($split_audio, $single_audio, "$name: the same audio packets");
	if ($name eq 'one_frame_last_segment')
	{
		is($reports->[-1]{frames}, 1, 'the last segment holds one frame');
		ok($reports->[-1]{reached_end}, 'and reached the end');
	}
	if ($name eq 'interlaced_ts')
	{
		ok($plan->{interlaced}, 'the plan deinterlaces throughout');
		ok((grep { $_->{seeks} > 1 } @$reports), 'a rough seek was made again from further back');
	}
}

# the stitch refuses segments that do not make one stream
my @hevc = @{ $chunks_of{open_gop_hevc} };
my @mixed = ($hevc[0], $chunks_of{interlaced_ts}[1], @hevc[ 2 .. $#hevc ]);
my $refused = VproxyTest::Media::run_transcode('stitch', "$dir/mixed.mp4", map { ('--segment', $_) } @mixed);
is($refused->{status}, 70, "a segment of another size is refused");
like($refused->{last_error}, qr/other stream headers/, 'as having other stream headers');
$refused = VproxyTest::Media::run_transcode('stitch', "$dir/gap.mp4", map { ('--segment', $_) } @hevc[ 0, 2 .. $#hevc ]);
like($refused->{last_error}, qr/does not follow the one before/, 'a missing segment is refused');
VproxyTest::Media::run_quiet('truncate', '-s', '-100', $hevc[1]);
$refused = VproxyTest::Media::run_transcode('stitch', "$dir/cut.mp4", map { ('--segment', $_) } @hevc);
like($refused->{last_error}, qr/not a whole chunk/, 'a cut chunk is refused');
ok(!-e "$dir/$_.mp4", "no $_ proxy left behind") for qw(mixed gap cut);

done_testing();
