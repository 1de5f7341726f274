/*
 * timestamps.c
 *		Arithmetic on timestamps read from a file.  A hostile file can put
 *		them anywhere in int64_t, so a plain sum or difference may overflow
 *		(undefined behaviour); here an unknown operand or a result that does
 *		not fit gives AV_NOPTS_VALUE, a timestamp the caller treats as damaged.
 */
#include <libavutil/avutil.h>

#include "media/media_internal.h"

/* a + b, or AV_NOPTS_VALUE when either is unknown or the sum does not fit. */
int64_t
media_ts_add(int64_t a, int64_t b)
{
	int64_t		sum;

	if (a == AV_NOPTS_VALUE || b == AV_NOPTS_VALUE || __builtin_add_overflow(a, b, &sum))
		return AV_NOPTS_VALUE;
	return sum;
}

/* a - b, or AV_NOPTS_VALUE when either is unknown or the difference does not fit. */
int64_t
media_ts_sub(int64_t a, int64_t b)
{
	int64_t		difference;

	if (a == AV_NOPTS_VALUE || b == AV_NOPTS_VALUE || __builtin_sub_overflow(a, b, &difference))
		return AV_NOPTS_VALUE;
	return difference;
}
