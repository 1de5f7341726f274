/*
 * text_clip.c
 *		Cut UTF-8 text on character boundaries and make it valid (RFC 3629:
 *		no overlong forms, no surrogates, nothing past U+10FFFF).
 */
#include <string.h>

#include "common/text_clip.h"

/* The length of the valid character at text[0..len), 0 if none starts there. */
size_t
text_clip_char_length(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *) text;
	size_t		need;
	unsigned int lowest_second = 0x80;
	unsigned int highest_second = 0xBF;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		need = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
	{
		need = 3;
		if (s[0] == 0xE0)
			lowest_second = 0xA0;	/* overlong */
		else if (s[0] == 0xED)
			highest_second = 0x9F;	/* surrogates */
	}
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
	{
		need = 4;
		if (s[0] == 0xF0)
			lowest_second = 0x90;	/* overlong */
		else if (s[0] == 0xF4)
			highest_second = 0x8F;	/* past U+10FFFF */
	}
	else
		return 0;				/* continuation byte, C0, C1, F5..FF */
	if (len < need || s[1] < lowest_second || s[1] > highest_second)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return need;
}

/* Whether text[0..len) is the beginning of a valid character cut short by len. */
static bool
cut_short(const char *text, size_t len)
{
	char		padded[4];

	if (len == 0 || len >= 4)
		return false;
	/* complete it with the smallest continuation bytes its lead byte allows */
	memcpy(padded, text, len);
	for (size_t i = len; i < 4; i++)
		padded[i] = (char) 0x80;
	if (len == 1)
	{
		unsigned char lead = (unsigned char) text[0];

		if (lead == 0xE0)
			padded[1] = (char) 0xA0;
		else if (lead == 0xF0)
			padded[1] = (char) 0x90;
	}
	return text_clip_char_length(padded, 4) > len;
}

/* Copy src into dst, cut on a character boundary and made valid. */
bool
text_clip_copy(char *dst, size_t size, const char *src)
{
	size_t		src_len = strlen(src);
	size_t		in = 0;
	size_t		out = 0;
	bool		intact = true;

	if (size == 0)
		return src_len == 0;
	while (in < src_len)
	{
		size_t		n = text_clip_char_length(src + in, src_len - in);

		if (n == 0 && cut_short(src + in, src_len - in))
		{
			intact = false;		/* clipped before it came here: drop it */
			break;
		}
		if (out + (n ? n : 1) > size - 1)
		{
			intact = false;
			break;
		}
		if (n == 0)
		{
			dst[out++] = '?';
			in++;
			intact = false;
			continue;
		}
		memcpy(dst + out, src + in, n);
		out += n;
		in += n;
	}
	dst[out] = '\0';
	return intact;
}

/* The first line of src, without trailing blanks, clipped and made valid. */
void
text_clip_first_line(char *dst, size_t size, const char *src)
{
	size_t		len;

	text_clip_copy(dst, size, src != NULL ? src : "");
	len = strcspn(dst, "\n");
	dst[len] = '\0';
	while (len > 0 && dst[len - 1] == ' ')
		dst[--len] = '\0';
}
