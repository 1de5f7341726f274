# Split proxies in tests: a source with white flashes and beeps at known
# times, and what a split proxy is compared with the single pass on (frame
# timestamps, the frames that flash, beep onsets, SSIM against the source
# per second, the temporary objects left).
package VproxyTest::Split;

use strict;
use warnings;
use JSON::PP;
use List::Util qw(min sum);
use VproxyTest::Media;

# A flash (a white picture) at 3.4 s into every 11 s, for 0.3 s, and a
# 1 kHz beep for 0.1 s at 7.25 s into every 11 s.
our $PERIOD = 11;
our $FLASH_AT = 3.4;
our $BEEP_AT = 7.25;

# The source: $seconds of $size at 30 fps, a moving picture with grain, H.264
# with B-frames (2 s GOP), AAC stereo; cached in the fixture directory.
sub source
{
	my (%opts) = @_;
	my $seconds = $opts{seconds} // 150;
	my $size = $opts{size} // '640x360';
	my $extra = $opts{video_options} // '';
	my $flash = "between(mod(t\\,$PERIOD)\\,$FLASH_AT\\,$FLASH_AT+0.3)";
	my $beep = "between(mod(t\\,$PERIOD)\\,$BEEP_AT\\,$BEEP_AT+0.1)";
	return VproxyTest::Media::make_item("split_source_${seconds}s_$size" . ($opts{tag} // ''), 'mp4', [
		'-f', 'lavfi', '-i', "testsrc2=size=$size:rate=30:duration=$seconds",
		'-f', 'lavfi', '-i', "aevalsrc='0.6*sin(2*PI*1000*t)*$beep':s=48000:d=$seconds",
		'-vf', "noise=alls=6:allf=t,drawbox=c=white:t=fill:enable='$flash'",
		qw(-c:v libx264 -preset veryfast -g 60 -bf 3 -c:a aac -b:a 96k -ac 2), split(' ', $extra) ]);
}

# The presentation timestamps of a file's video frames, in order.
sub frame_times
{
	my ($file) = @_;
	my $out = VproxyTest::Media::run_quiet('ffprobe', qw(-v error -select_streams v:0
		-show_entries frame=pts_time -of json), $file);
	return [ map { $_->{pts_time} } @{ decode_json($out)->{frames} } ];
}

# The indexes of the frames that are white (a flash).
sub flash_frames
{
	my ($file) = @_;
	my $out = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -v error -i), $file, '-an', '-vf',
		'signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-', qw(-f null -));
	my @yavg = $out =~ /YAVG=([\d.]+)/g;
	return [ grep { $yavg[$_] > 200 } 0 .. $#yavg ];
}

# The times (s) where a beep starts: the first 5 ms window above -30 dB
# after one below.
sub beep_onsets
{
	my ($file) = @_;
	my $out = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -v error -i), $file, '-vn', '-af',
		'aformat=channel_layouts=mono,asetnsamples=n=240,astats=metadata=1:reset=1,'
		  . 'ametadata=print:key=lavfi.astats.Overall.RMS_level:file=-', qw(-f null -));
	my (@onsets, $loud);
	while ($out =~ /pts_time:([\d.]+)\s+lavfi\.astats\.Overall\.RMS_level=(\S+)/g)
	{
		my ($time, $level) = ($1, $2);
		my $now = $level ne '-inf' && $level > -30;
		push @onsets, $time if $now && !$loud;
		$loud = $now;
	}
	return \@onsets;
}

# SSIM of each frame of $file against a lanczos downscale of $source at the
# proxy's rate: overall, and the worst one-second window.
sub ssim
{
	my ($file, $source) = @_;
	my $info = VproxyTest::Media::video_stream(VproxyTest::Media::ffprobe_json($file));
	my $out = VproxyTest::Media::run_quiet('ffmpeg', qw(-nostdin -v error -i), $file, '-i', $source,
		'-lavfi', "[1:v]fps=10,scale=$info->{width}:$info->{height}:flags=lanczos[ref];[0:v][ref]ssim=stats_file=-",
		qw(-f null -));
	my @frames = $out =~ /All:([\d.]+)/g;
	die "no SSIM for $file\n" unless @frames;
	my @seconds;
	for (my $i = 0; $i < @frames; $i += 10)
	{
		my @window = @frames[ $i .. min($i + 9, $#frames) ];
		push @seconds, sum(@window) / @window;
	}
	return { overall => sum(@frames) / @frames, worst_second => min(@seconds) };
}

# The bytes of an MP4 file's media data (its top-level mdat boxes): the rest
# is the index and the headers.
sub mdat_bytes
{
	my ($file) = @_;
	open my $fh, '<:raw', $file or die "$file: $!";
	my ($total, $offset, $header) = (0, 0, '');
	while (read($fh, $header, 8) == 8)
	{
		my ($size, $type) = unpack('Na4', $header);
		if ($size == 1)
		{
			read($fh, my $large, 8) == 8 or last;
			my ($high, $low) = unpack('NN', $large);
			$size = $high * 2**32 + $low;
		}
		$size = (-s $file) - $offset if $size == 0;
		last if $size < 8;
		$total += $size if $type eq 'mdat';
		$offset += $size;
		seek($fh, $offset, 0) or last;
	}
	return $total;
}

# The objects under a directory (the file store), relative, sorted.
sub stored_objects
{
	my ($root) = @_;
	my @found;
	my $walk;
	$walk = sub {
		my ($dir, $prefix) = @_;
		opendir(my $dh, $dir) or return;
		for my $name (sort grep { !/^\.\.?$/ } readdir $dh)
		{
			-d "$dir/$name" ? $walk->("$dir/$name", "$prefix$name/") : push @found, "$prefix$name";
		}
	};
	$walk->($root, '');
	return \@found;
}

1;
