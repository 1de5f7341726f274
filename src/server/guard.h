/*
 * guard.h
 *		Keep the workers out of the way of commands that need their database
 *		to themselves (DROP DATABASE and friends).
 */
#ifndef VPROXY_GUARD_H
#define VPROXY_GUARD_H

/* Install the ProcessUtility hook and its transaction callback. */
extern void install_database_guard(void);

#endif							/* VPROXY_GUARD_H */
