/*
 * openssl_hashes.c
 *		OpenSSL's SHA-256 and HMAC-SHA256 for the one presigner.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "storage/openssl_hashes.h"

/* OpenSSL's SHA-256. */
static bool
openssl_sha256(const void *data, size_t length, unsigned char digest[SIGV4_DIGEST_LENGTH],
			   void *arg)
{
	(void) arg;
	return EVP_Digest(data, length, digest, NULL, EVP_sha256(), NULL) == 1;
}

/* OpenSSL's HMAC-SHA256. */
static bool
openssl_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length,
					unsigned char mac[SIGV4_DIGEST_LENGTH], void *arg)
{
	unsigned int mac_length = SIGV4_DIGEST_LENGTH;

	(void) arg;
	return HMAC(EVP_sha256(), key, (int) key_length, data, length, mac, &mac_length) != NULL;
}

const SigV4Hashes openssl_sigv4_hashes = {openssl_sha256, openssl_hmac_sha256, NULL};
