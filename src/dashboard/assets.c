/*
 * assets.c
 *		The page's files, built into the program (the assembler's .incbin
 *		copies src/dashboard/assets/ in at build time): the dashboard needs
 *		no web root and no network beyond its own socket.
 */
#include <string.h>

#include "dashboard/dashboard.h"

/* Embed a file of src/dashboard/assets as name_start .. name_end. */
#define EMBED(name, file) \
	__asm__(".section .rodata\n" \
			".balign 16\n" \
			#name "_start:\n" \
			".incbin \"src/dashboard/assets/" file "\"\n" \
			#name "_end:\n" \
			".byte 0\n" \
			".previous\n"); \
	extern const char name##_start[]; \
	extern const char name##_end[]

EMBED(index_html, "index.html");
EMBED(login_html, "login.html");
EMBED(app_js, "app.js");
EMBED(style_css, "style.css");
EMBED(favicon_svg, "favicon.svg");

/* The embedded files by URL path (the length is filled in on first use). */
static Asset assets[] = {
	{"/", "text/html; charset=utf-8", index_html_start, 0},
	{"/assets/app.js", "text/javascript; charset=utf-8", app_js_start, 0},
	{"/assets/style.css", "text/css; charset=utf-8", style_css_start, 0},
	{"/favicon.svg", "image/svg+xml", favicon_svg_start, 0},
	{"/favicon.ico", "image/svg+xml", favicon_svg_start, 0},
};
static Asset login = {"/login", "text/html; charset=utf-8", login_html_start, 0};

/* Fill in the lengths from the end labels. */
static void
assets_measure(void)
{
	if (assets[0].len != 0)
		return;
	assets[0].len = (size_t) (index_html_end - index_html_start);
	assets[1].len = (size_t) (app_js_end - app_js_start);
	assets[2].len = (size_t) (style_css_end - style_css_start);
	assets[3].len = (size_t) (favicon_svg_end - favicon_svg_start);
	assets[4].len = assets[3].len;
	login.len = (size_t) (login_html_end - login_html_start);
}

/* The embedded file served at path, or NULL. */
const Asset *
assets_find(const char *path)
{
	assets_measure();
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		if (strcmp(assets[i].path, path) == 0)
			return &assets[i];
	return NULL;
}

/* The login page (served with 401 to a browser without the cookie). */
const Asset *
assets_login_page(void)
{
	assets_measure();
	return &login;
}
