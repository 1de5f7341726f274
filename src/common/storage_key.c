/*
 * storage_key.c
 *		The one rule for storage keys and the key templates that make them
 *		(storage_key.h).
 */
#include <stdint.h>
#include <string.h>

#include "common/storage_key.h"

/* A placeholder of the templates. */
typedef enum Placeholder
{
	PLACEHOLDER_NONE,
	PLACEHOLDER_MALL_ID,
	PLACEHOLDER_PIN_ID,
	PLACEHOLDER_VIDEO_ID,
	PLACEHOLDER_UNKNOWN			/* a brace that starts no known placeholder */
} Placeholder;

static const struct
{
	const char *text;
	Placeholder placeholder;
}			placeholders[] = {
	{"{mall_id}", PLACEHOLDER_MALL_ID},
	{"{pin_id}", PLACEHOLDER_PIN_ID},
	{"{video_id}", PLACEHOLDER_VIDEO_ID},
};

/* the names a template check fills in to try the keys it makes */
static const StorageKeyNames sample_names = {"m", "p", "00000000-0000-0000-0000-000000000000"};

/* The placeholder at text (which holds a brace), and its length in *length. */
static Placeholder
placeholder_at(const char *text, size_t *length)
{
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
	{
		size_t		n = strlen(placeholders[i].text);

		if (strncmp(text, placeholders[i].text, n) == 0)
		{
			*length = n;
			return placeholders[i].placeholder;
		}
	}
	*length = 1;
	return PLACEHOLDER_UNKNOWN;
}

/* The value that fills a placeholder ("" for NULL). */
static const char *
placeholder_value(Placeholder placeholder, const StorageKeyNames *names)
{
	const char *value = NULL;

	switch (placeholder)
	{
		case PLACEHOLDER_MALL_ID:
			value = names->mall_id;
			break;
		case PLACEHOLDER_PIN_ID:
			value = names->pin_id;
			break;
		case PLACEHOLDER_VIDEO_ID:
			value = names->video_id;
			break;
		default:
			break;
	}
	return value ? value : "";
}

/*
 * The length of the valid UTF-8 sequence at text (1 to 4), or 0 if there is
 * none: no overlong form, no surrogate, nothing beyond U+10FFFF.
 */
static size_t
utf8_sequence_length(const unsigned char *text)
{
	unsigned char c = text[0];
	size_t		length;
	uint32_t	code;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
	{
		length = 2;
		code = c & 0x1F;
	}
	else if (c >= 0xE0 && c <= 0xEF)
	{
		length = 3;
		code = c & 0x0F;
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		length = 4;
		code = c & 0x07;
	}
	else
		return 0;
	for (size_t i = 1; i < length; i++)
	{
		if ((text[i] & 0xC0) != 0x80)
			return 0;
		code = (code << 6) | (text[i] & 0x3F);
	}
	if ((length == 3 && code < 0x800) || (length == 4 && code < 0x10000) ||
		(code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF)
		return 0;
	return length;
}

/* NULL if key is a safe storage key, else why not. */
const char *
storage_key_problem(const char *key)
{
	const unsigned char *c = (const unsigned char *) key;
	const char *component = key;

	if (key == NULL || key[0] == '\0')
		return "is empty";
	if (strlen(key) > STORAGE_KEY_MAX)
		return "is longer than 1024 bytes";
	if (key[0] == '/')
		return "is absolute (starts with /)";
	while (*c)
	{
		size_t		length = utf8_sequence_length(c);

		if (length == 0)
			return "is not valid UTF-8";
		/* C0 controls, DEL, and C1 controls (U+0080 to U+009F) */
		if (*c < 0x20 || *c == 0x7F || (length == 2 && c[0] == 0xC2 && c[1] < 0xA0))
			return "holds a control character";
		c += length;
	}
	while (component != NULL)
	{
		const char *slash = strchr(component, '/');
		size_t		length = slash ? (size_t) (slash - component) : strlen(component);

		if (length == 0)
			return "has an empty path component (// or a trailing /)";
		if ((length == 1 && component[0] == '.') ||
			(length == 2 && component[0] == '.' && component[1] == '.'))
			return "has a \".\" or \"..\" path component";
		component = slash ? slash + 1 : NULL;
	}
	return NULL;
}

/* The same for a key made from a template: also no brace. */
const char *
storage_key_output_problem(const char *key)
{
	const char *problem = storage_key_problem(key);

	if (problem == NULL && strpbrk(key, "{}") != NULL)
		return "holds a brace (an unknown placeholder, or a name holding braces)";
	return problem;
}

/* What a template holds, found by scan_template. */
typedef struct TemplateShape
{
	bool		unknown;		/* a brace that starts no known placeholder */
	bool		has_video_id;
	bool		has_mall_id;
	bool		mall_not_alone; /* another placeholder in {mall_id}'s segment */
} TemplateShape;

/* Scan a template's placeholders and path segments. */
static void
scan_template(const char *template, TemplateShape *shape)
{
	int			segment_placeholders = 0;
	bool		segment_has_mall = false;

	memset(shape, 0, sizeof(*shape));
	for (const char *c = template;; c++)
	{
		size_t		length;
		Placeholder placeholder;

		if (*c == '/' || *c == '\0')
		{
			if (segment_has_mall && segment_placeholders > 1)
				shape->mall_not_alone = true;
			segment_placeholders = 0;
			segment_has_mall = false;
			if (*c == '\0')
				return;
			continue;
		}
		if (*c != '{' && *c != '}')
			continue;
		placeholder = *c == '{' ? placeholder_at(c, &length) : PLACEHOLDER_UNKNOWN;
		if (placeholder == PLACEHOLDER_UNKNOWN)
		{
			shape->unknown = true;
			continue;
		}
		segment_placeholders++;
		if (placeholder == PLACEHOLDER_MALL_ID)
			segment_has_mall = shape->has_mall_id = true;
		if (placeholder == PLACEHOLDER_VIDEO_ID)
			shape->has_video_id = true;
		c += length - 1;
	}
}

/* Fill the first length bytes of template into buffer; false if it does not fit. */
static bool
expand_part(const char *template, size_t length, const StorageKeyNames *names,
			char *buffer, size_t size)
{
	size_t		out = 0;

	if (size == 0)
		return false;
	for (size_t in = 0; in < length;)
	{
		const char *piece = template + in;
		size_t		piece_length = 1;
		size_t		consumed = 1;

		if (template[in] == '{')
		{
			size_t		placeholder_length;
			Placeholder placeholder = placeholder_at(template + in, &placeholder_length);

			if (placeholder != PLACEHOLDER_UNKNOWN && in + placeholder_length <= length)
			{
				piece = placeholder_value(placeholder, names);
				piece_length = strlen(piece);
				consumed = placeholder_length;
			}
		}
		if (out + piece_length >= size)
		{
			buffer[out] = '\0';
			return false;
		}
		memcpy(buffer + out, piece, piece_length);
		out += piece_length;
		in += consumed;
	}
	buffer[out] = '\0';
	return true;
}

/* Fill template's placeholders into buffer; false if the result does not fit. */
bool
storage_key_expand(const char *template, const StorageKeyNames *names, char *buffer, size_t size)
{
	return expand_part(template, strlen(template), names, buffer, size);
}

/* The tenant's prefix a template gives; false if it has none. */
bool
storage_key_tenant_prefix(const char *template, const StorageKeyNames *names,
						  char *buffer, size_t size)
{
	const char *mall = strstr(template, "{mall_id}");
	const char *slash;
	size_t		length;

	if (mall == NULL || (slash = strchr(mall, '/')) == NULL)
		return false;
	/* up to the end of the segment, and its slash */
	if (!expand_part(template, (size_t) (slash - template), names, buffer, size))
		return false;
	length = strlen(buffer);
	if (length + 2 > size)
		return false;
	buffer[length] = '/';
	buffer[length + 1] = '\0';
	return true;
}

/* NULL if template can make output keys, else why not. */
const char *
storage_key_template_problem(const char *template)
{
	TemplateShape shape;
	char		sample[STORAGE_KEY_MAX + 2];

	if (template == NULL || template[0] == '\0')
		return "is empty";
	scan_template(template, &shape);
	if (shape.unknown)
		return "holds an unknown placeholder or a stray brace (known: {mall_id}, {pin_id}, {video_id})";
	if (!shape.has_video_id)
		return "must hold {video_id}, or every video would share one key";
	if (shape.mall_not_alone)
		return "must hold no other placeholder in the path segment of {mall_id}";
	if (!storage_key_expand(template, &sample_names, sample, sizeof(sample)))
		return "is longer than 1024 bytes";
	return storage_key_output_problem(sample);
}

/* NULL if template can be vproxy.upload_prefix_template, else why not. */
const char *
storage_key_prefix_template_problem(const char *template)
{
	TemplateShape shape;
	char		sample[STORAGE_KEY_MAX + 2];
	size_t		length;

	if (template == NULL || template[0] == '\0')
		return NULL;
	scan_template(template, &shape);
	if (shape.unknown)
		return "holds an unknown placeholder or a stray brace (known: {mall_id}, {pin_id})";
	if (shape.has_video_id)
		return "must not hold {video_id}: the application names the original before the row exists";
	if (shape.mall_not_alone)
		return "must hold no other placeholder in the path segment of {mall_id}";
	if (template[strlen(template) - 1] != '/')
		return "must end with /";
	/* a key just below the prefix must be a safe key */
	if (!storage_key_expand(template, &sample_names, sample, sizeof(sample) - 1))
		return "is longer than 1024 bytes";
	length = strlen(sample);
	sample[length] = 'x';
	sample[length + 1] = '\0';
	return storage_key_output_problem(sample);
}

/*
 * Whether some names filled into template could make key: a placeholder
 * stands for any run of characters within one path segment.
 */
bool
storage_key_template_matches(const char *template, const char *key)
{
	size_t		length;

	for (;;)
	{
		if (*template == '{' && placeholder_at(template, &length) != PLACEHOLDER_UNKNOWN)
		{
			for (const char *rest = key;; rest++)
			{
				if (storage_key_template_matches(template + length, rest))
					return true;
				if (*rest == '\0' || *rest == '/')
					return false;
			}
		}
		if (*template == '\0' || *template != *key)
			return *template == *key;
		template++;
		key++;
	}
}
