/*
 * percent_encode.c
 *		Percent-encoding of S3 keys, queries and file paths, and decoding of
 *		S3's url-encoded listings.
 */
#include "common/percent_encode.h"

/* Whether a byte stays as it is (RFC 3986's unreserved, '/' if kept). */
static bool
unreserved(unsigned char c, bool keep_slash)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/');
}

/* The length of text once encoded (without the terminating NUL). */
size_t
percent_encoded_length(const char *text, bool keep_slash)
{
	size_t		length = 0;

	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
		length += unreserved(*c, keep_slash) ? 1 : 3;
	return length;
}

/* Encode text into out (room for percent_encoded_length() + 1 bytes). */
size_t
percent_encode(char *out, const char *text, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *o = out;

	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		if (unreserved(*c, keep_slash))
			*o++ = (char) *c;
		else
		{
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 15];
		}
	}
	*o = '\0';
	return (size_t) (o - out);
}

/* The value of a hex digit, -1 if c is none. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode text into out (room for strlen(text) + 1 bytes). */
bool
percent_decode(char *out, const char *text, bool form)
{
	for (const char *c = text; *c; c++)
	{
		if (*c == '%')
		{
			int			high = hex_value(c[1]);
			int			low = high < 0 ? -1 : hex_value(c[2]);

			if (low < 0 || (high == 0 && low == 0))
				return false;
			*out++ = (char) (high * 16 + low);
			c += 2;
		}
		else
			*out++ = form && *c == '+' ? ' ' : *c;
	}
	*out = '\0';
	return true;
}
