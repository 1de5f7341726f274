/*
 * openssl_hashes.h
 *		OpenSSL's SHA-256 and HMAC-SHA256 in the form the one presigner
 *		(src/common/sigv4_presign.h) takes them, for the programs that link
 *		OpenSSL (vproxy-transcode; the unit tests of src/common).
 */
#ifndef VPROXY_STORAGE_OPENSSL_HASHES_H
#define VPROXY_STORAGE_OPENSSL_HASHES_H

#include "common/sigv4_presign.h"

/* The presigner's hash functions, from OpenSSL. */
extern const SigV4Hashes openssl_sigv4_hashes;

#endif							/* VPROXY_STORAGE_OPENSSL_HASHES_H */
