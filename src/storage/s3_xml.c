/*
 * s3_xml.c
 *		Reading S3's XML answers (errors, multipart initiation and
 *		completion, listings) with libexpat: every element without child
 *		elements is handed to a visitor with its path from the root
 *		("Error/Code", "ListBucketResult/Contents/Key") and its text, entities
 *		and character references decoded by the parser.  S3 never sends a
 *		document type declaration, so one is refused (no entity of the
 *		server's own, however nested, is ever expanded).  Also the one escaping
 *		function for what vproxy writes in XML (CompleteMultipartUpload).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "storage/s3_client.h"

/* Longest element path and longest text of one element that are read. */
#define XML_PATH_MAX 256
#define XML_TEXT_MAX (64 * 1024)

/* The parse in progress. */
typedef struct XmlState
{
	XML_Parser	parser;
	S3XmlVisitor visit;
	void	   *arg;
	char		path[XML_PATH_MAX];
	size_t		path_length;
	char	   *text;			/* the current element's text */
	size_t		text_length;
	bool		leaf;			/* no child element seen since the last start */
	const char *problem;		/* why the parse was stopped, or NULL */
} XmlState;

/* Stop the parse for a reason of ours. */
static void
stop(XmlState *state, const char *problem)
{
	if (state->problem == NULL)
		state->problem = problem;
	XML_StopParser(state->parser, XML_FALSE);
}

/* Start tag: extend the path, start a fresh text. */
static void XMLCALL
on_start(void *arg, const XML_Char *name, const XML_Char **attributes)
{
	XmlState   *state = arg;
	size_t		length = strlen(name);

	(void) attributes;
	if (state->path_length + length + 2 > sizeof(state->path))
	{
		stop(state, "elements nested too deep");
		return;
	}
	if (state->path_length > 0)
		state->path[state->path_length++] = '/';
	memcpy(state->path + state->path_length, name, length + 1);
	state->path_length += length;
	state->text_length = 0;
	state->leaf = true;
}

/* End tag: hand a leaf to the visitor, shorten the path. */
static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	XmlState   *state = arg;

	if (state->leaf && state->problem == NULL)
	{
		state->text[state->text_length] = '\0';
		if (!state->visit(state->path, state->text, state->arg))
			stop(state, "the visitor stopped");
	}
	state->leaf = false;
	state->path_length -= strlen(name);
	if (state->path_length > 0)
		state->path_length--;	/* the '/' before it */
	state->path[state->path_length] = '\0';
}

/* Character data: append to the current element's text. */
static void XMLCALL
on_text(void *arg, const XML_Char *text, int length)
{
	XmlState   *state = arg;

	if (state->text_length + length > XML_TEXT_MAX)
	{
		stop(state, "an element's text is too long");
		return;
	}
	memcpy(state->text + state->text_length, text, length);
	state->text_length += length;
}

/* A document type declaration: S3 sends none, so refuse it. */
static void XMLCALL
on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
		   int has_internal_subset)
{
	(void) name;
	(void) sysid;
	(void) pubid;
	(void) has_internal_subset;
	stop(arg, "a document type declaration");
}

/* Parse a document, visiting every leaf element; NULL or why it failed. */
const char *
s3_xml_parse(const char *document, size_t length, S3XmlVisitor visit, void *arg)
{
	XmlState	state;
	const char *problem = NULL;

	memset(&state, 0, sizeof(state));
	state.visit = visit;
	state.arg = arg;
	if (document == NULL || length == 0)
		return "no document";
	state.text = malloc(XML_TEXT_MAX + 1);
	state.parser = XML_ParserCreate("UTF-8");
	if (state.text == NULL || state.parser == NULL)
		problem = "out of memory";
	else
	{
		XML_SetUserData(state.parser, &state);
		XML_SetElementHandler(state.parser, on_start, on_end);
		XML_SetCharacterDataHandler(state.parser, on_text);
		XML_SetStartDoctypeDeclHandler(state.parser, on_doctype);
		if (XML_Parse(state.parser, document, (int) length, XML_TRUE) != XML_STATUS_OK)
			problem = state.problem ? state.problem :
				XML_ErrorString(XML_GetErrorCode(state.parser));
	}
	if (state.parser != NULL)
		XML_ParserFree(state.parser);
	free(state.text);
	return problem;
}

/* What s3_xml_text looks for, and where it puts it. */
typedef struct TextWanted
{
	const char *path;
	char	   *out;
	size_t		size;
	bool		found;
} TextWanted;

/* Visitor: take the first element at the wanted path, then stop. */
static bool
take_text(const char *path, const char *text, void *arg)
{
	TextWanted *wanted = arg;

	if (strcmp(path, wanted->path) != 0)
		return true;
	snprintf(wanted->out, wanted->size, "%s", text);
	wanted->found = true;
	return false;
}

/* The text of the first element at path ("Error/Code") of a document. */
bool
s3_xml_text(const char *document, const char *path, char *out, size_t size)
{
	TextWanted	wanted = {path, out, size, false};

	if (size == 0)
		return false;
	out[0] = '\0';
	if (document != NULL)
		s3_xml_parse(document, strlen(document), take_text, &wanted);
	return wanted.found;
}

/* Text escaped for XML content and attribute values (& < > " ' as entities); malloc'd. */
char *
s3_xml_escape(const char *text)
{
	char	   *out = malloc(6 * strlen(text) + 1);
	char	   *o = out;

	if (out == NULL)
		return NULL;
	for (const char *c = text; *c; c++)
	{
		const char *entity = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;" :
			*c == '"' ? "&quot;" : *c == '\'' ? "&apos;" : NULL;

		if (entity == NULL)
			*o++ = *c;
		else
			o = stpcpy(o, entity);
	}
	*o = '\0';
	return out;
}
