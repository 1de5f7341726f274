# vproxy-transcode thumbnail: the frame the ffmpeg CLI picks at the same time,
# upright, square pixels, 320 wide, compared by PSNR with ffmpeg's own JPEG.
use strict;
use warnings;
use Test::More;
use POSIX qw(floor);
use VproxyTest::Media;

plan skip_all => 'ffmpeg/ffprobe not installed' unless have_program('ffmpeg') && have_program('ffprobe');

my $dir = scratch_dir();
my $TONEMAP = 'zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=709,tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=full,format=yuvj420p';

sub even { my $e = 2 * floor($_[0] / 2 + 0.5); return $e < 2 ? 2 : $e }

# ffmpeg's own thumbnail: same time, same size, same deinterlacing and tone mapping.
sub reference
{
	my ($path, $at, $w, $h, $out, $video) = @_;
	# ffmpeg's input seek in MPEG-TS lands only roughly (on short or offset
	# camera files, after every frame): there, decode from the start and
	# select the first frame at or after the time from the file's start
	# (the earliest stream's, as ffprobe says; timestamps kept as they are)
	my $from_start = $path =~ /\.(ts|mts)$/;
	my $absolute = $at + ($from_start ? ffprobe_json($path)->{format}{start_time} : 0);
	my @filters;
	push @filters, 'bwdif=mode=send_frame:parity=auto:deint=interlaced'
	  if ($video->{field_order} // '') =~ /^(tt|bb|tb|bt)$/;
	push @filters, "select='gte(t\\,$absolute)'" if $from_start;
	push @filters, "scale=$w:$h:flags=bicubic";
	push @filters, $TONEMAP if ($video->{color_transfer} // '') =~ /smpte2084|arib-std-b67/;
	my @input = $from_start ? (qw(-copyts -i), $path, qw(-fps_mode passthrough)) : ('-ss', $at, '-i', $path);
	VproxyTest::Media::ffmpeg(@input, qw(-frames:v 1 -q:v 2 -vf), join(',', @filters), $out);
}

for my $name (grep { !/^(size_switch_ts|one_frame)$/ } fixture_names())
{
	my $path = fixture($name);
	my $probe = ffprobe_json($path, '-show_entries', 'stream_side_data');
	my $video = video_stream($probe);
	my ($dw, $dh) = display_size($video);
	my ($w, $h) = (320, even(320 * $dh / $dw));
	my $duration = oracle_duration($path, $probe);
	my $at = $duration > 5.0 ? 5.0 : $duration / 2;
	my $out = "$dir/$name.jpg";

	my $result = run_transcode('thumbnail', $path, $out);
	is($result->{status}, 0, "$name: thumbnail made") or diag $result->{stderr};
	is(sanitizer_report($result), '', "$name: no sanitizer report");
	my $json = $result->{json} or next;
	is_deeply([sort keys %$json], [qw(file_size_bytes height timestamp_seconds width)], "$name: the four keys");
	is("$json->{width}x$json->{height}", "${w}x$h", "$name: 320 wide, display aspect");
	cmp_ok(abs($json->{timestamp_seconds} - $at), '<', 0.001, "$name: taken at $at s");
	is($json->{file_size_bytes}, -s $out, "$name: file size");

	my $jpeg = ffprobe_json($out);
	my $s = $jpeg->{streams}[0];
	is($s->{codec_name}, 'mjpeg', "$name: a JPEG");
	is("$s->{width}x$s->{height}", "${w}x$h", "$name: JPEG size");
	is($s->{pix_fmt}, 'yuvj420p', "$name: full-range 4:2:0");

	reference($path, $at, $w, $h, "$dir/$name.ref.jpg", $video);
	my $psnr = psnr($out, "$dir/$name.ref.jpg");
	cmp_ok($psnr, '>', 35, "$name: same picture as ffmpeg's frame at $at s (PSNR $psnr dB)");
}

# the right frame, not a neighbour: a moving clip, 30 fps, rotated
{
	my $path = fixture('phone_rotated');
	my $out = "$dir/at.jpg";
	my $result = run_transcode('thumbnail', $path, $out, '--at', '1.5', '--width', '160');
	is($result->{status}, 0, '--at 1.5 --width 160');
	is("$result->{json}{width}x$result->{json}{height}", '160x284', 'width option, height from the rotated display aspect');
	my $video = video_stream(ffprobe_json($path, '-show_entries', 'stream_side_data'));
	reference($path, '1.5', 160, 284, "$dir/at.ref.jpg", $video);
	reference($path, '1.6', 160, 284, "$dir/later.ref.jpg", $video);
	my ($same, $neighbour) = (psnr($out, "$dir/at.ref.jpg"), psnr($out, "$dir/later.ref.jpg"));
	cmp_ok($same, '>', 35, "frame at 1.5 s matches ffmpeg's ($same dB)");
	cmp_ok($neighbour, '<', $same - 5, "and differs from the frame 0.1 s later ($neighbour dB)");
}

# a picture size that changes mid-stream: the thumbnail has the aspect of the frame it shows
for my $case (['1.0', 320, 240], ['3.0', 320, 180])
{
	my ($at, $w, $h) = @$case;
	my $path = fixture('size_switch_ts');
	my $out = "$dir/switch-$at.jpg";
	my $result = run_transcode('thumbnail', $path, $out, '--at', $at);
	is("$result->{json}{width}x$result->{json}{height}", "${w}x$h", "size change: at $at s the frame is ${w}x$h");
	# ffmpeg's input seek lands in the wrong half of this file: decode from the start instead
	VproxyTest::Media::ffmpeg('-i', $path, '-ss', $at, qw(-frames:v 1 -q:v 2 -vf), "scale=$w:$h",
		"$dir/switch-$at.ref.jpg");
	my $psnr = psnr($out, "$dir/switch-$at.ref.jpg");
	cmp_ok($psnr, '>', 35, "size change: at $at s the frame ffmpeg picks ($psnr dB)");
}

# a browser recording without a duration: the midpoint rule does not apply
# to its 10 s, the thumbnail is the frame at 5 s (checked above against
# ffmpeg -ss 5); and not a neighbour's
{
	my $path = fixture('browser_webm');
	my $result = run_transcode('thumbnail', $path, "$dir/browser.jpg");
	is($result->{json}{timestamp_seconds}, 5, 'browser_webm: taken at 5 s');
	reference($path, '5.5', 320, 240, "$dir/browser-later.ref.jpg", {});
	my $psnr = psnr("$dir/browser.jpg", "$dir/browser-later.ref.jpg");
	cmp_ok($psnr, '<', 35, "browser_webm: not the frame at 5.5 s ($psnr dB)");
}

# a single frame: the midpoint is past its start, so ffmpeg -ss finds nothing; we show the frame
{
	my $path = fixture('one_frame');
	my $result = run_transcode('thumbnail', $path, "$dir/one.jpg");
	is($result->{status}, 0, 'one frame: thumbnail made');
	cmp_ok(abs(($result->{json}{timestamp_seconds} // -1) - 0.02), '<', 0.001, 'one frame: the midpoint asked');
	reference($path, 0, 320, 240, "$dir/one.ref.jpg", {});
	my $psnr = psnr("$dir/one.jpg", "$dir/one.ref.jpg");
	cmp_ok($psnr, '>', 35, "one frame: it is that frame ($psnr dB)");
}

# a time past the end falls back to the midpoint
{
	my $result = run_transcode('thumbnail', fixture('cctv_5fps'), "$dir/past.jpg", '--at', '100');
	is($result->{status}, 0, 'time past the end: made');
	cmp_ok(abs($result->{json}{timestamp_seconds} - 2.0), '<', 0.001, 'time past the end: the midpoint');
}

# an extreme aspect ratio: a 32x8192 strip would be 320x81920, beyond what a
# JPEG holds; the height is clamped to 8192, the width follows the aspect
{
	my $path = "$dir/strip.mp4";
	VproxyTest::Media::ffmpeg(qw(-f lavfi -i testsrc2=size=32x8192:rate=5 -frames:v 3
		-c:v libx264 -preset ultrafast -pix_fmt yuv420p), $path);
	my $result = run_transcode('thumbnail', $path, "$dir/strip.jpg");
	is($result->{status}, 0, '32x8192 strip: thumbnail made') or diag $result->{stderr};
	is(sanitizer_report($result), '', '32x8192 strip: no sanitizer report');
	is("$result->{json}{width}x$result->{json}{height}", '32x8192', '32x8192 strip: clamped to 8192 high, aspect kept');
	my $s = ffprobe_json("$dir/strip.jpg")->{streams}[0];
	is("$s->{codec_name} $s->{width}x$s->{height}", 'mjpeg 32x8192', '32x8192 strip: ffprobe sees a 32x8192 JPEG');
	reference($path, $result->{json}{timestamp_seconds}, 32, 8192, "$dir/strip.ref.jpg", {});
	my $psnr = psnr("$dir/strip.jpg", "$dir/strip.ref.jpg");
	cmp_ok($psnr, '>', 35, "32x8192 strip: the frame ffmpeg picks ($psnr dB)");
}

# failures leave nothing behind
for my $name (qw(random_bytes audio_only header_then_garbage))
{
	my ($path, $status) = bad_input($name);
	my $outdir = scratch_dir();
	my $result = run_transcode('thumbnail', $path, "$outdir/thumb.jpg");
	is($result->{status}, $status, "bad input $name: exit $status");
	opendir my $dh, $outdir or die;
	my @left = grep { !/^\.\.?$/ } readdir $dh;
	is_deeply(\@left, [], "bad input $name: no file left behind");
}
is(run_transcode('thumbnail', fixture('three_frames'), "$dir/x.jpg", '--width', 'wide')->{status}, 64, 'bad --width: usage error');
is(run_transcode('thumbnail', fixture('three_frames'), "$dir/x.jpg", '--at', '-1')->{status}, 64, 'negative --at: usage error');

done_testing();
