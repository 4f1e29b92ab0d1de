/*
 * crypt: at-rest encryption of log frames and dump chunks (AES-256-GCM,
 * OpenSSL libcrypto). A leaf module on base only, because both store/
 * (dump.c: sealed dump chunks) and the shipper/receiver (sealed frames)
 * need it, and store/ may not include codec/.
 *
 * KEY FILE (`--key-file FILE`, or the environment variable SHIPLOG_KEY_FILE)
 *   One key per line: KEY_ID HEX, KEY_ID [A-Za-z0-9_-]{1,32}, HEX 64 hex
 *   digits (32 bytes), separated by blanks; blank lines and lines starting
 *   with '#' are skipped. The first key seals new files; every listed key
 *   opens old ones (rotation: put the new key first, keep the old ones).
 *   The file must not be readable or writable by group or others (as ssh
 *   insists for private keys). Errors name FILE:LINE and never print a key.
 *
 * SEALED FRAME (store/log.h, SEALED FRAMES, gives the layout)
 *   A packed shiplog.Transaction holding txid (1), commit_time_us (2),
 *   epoch (3) and checksum (5) in clear and sealed (6) = nonce 12 |
 *   AES-256-GCM ciphertext of the packed plaintext Transaction | tag 16,
 *   under HKDF-SHA256(key, salt = store id, info = "shiplog frame v1" |
 *   le64(txid >> 24)), AAD = le64 txid | le64 commit_time_us | le64 epoch |
 *   le64 checksum | store id | key id (32, NUL-padded). The nonce is random.
 *   COMPRESSED (SL_SEG_F_SEALED_LZ4 segments): when the sealer is asked to
 *   and LZ4 saves bytes, what is encrypted is the LZ4 block of the packed
 *   plaintext Transaction, and the sealed transaction carries lz4_len (7) =
 *   the plaintext's length (1 .. SL_CRYPT_PLAIN_MAX), written after field 6;
 *   the AAD is then followed by le64 lz4_len, so adding, removing or
 *   changing field 7 makes the frame fail to open. Opening checks the
 *   declared length before anything is allocated and decompresses with
 *   bounds (LZ4_decompress_safe into exactly lz4_len bytes).
 *   This module encodes and parses those six fields itself (it does not
 *   depend on proto/); a sealed transaction with any other field is refused.
 *
 * SEALED DUMP CHUNK (store/dump.h gives where): nonce 12 | ciphertext | tag
 *   16 under HKDF-SHA256(key, salt = store id, info = "shiplog dump v1"),
 *   AAD given by the caller (dump.h: chunk header, chunk index, file header).
 *
 * SUBKEYS are derived once and cached per (key, store id, info) in the
 * keyring (a small table under a mutex), so HKDF does not run per frame.
 *
 * ERRORS: open returns SL_ENOTFOUND when the key id is not in the keyring
 * (logged, naming the key id and the key file), SL_EAUTH when the tag does
 * not verify (wrong key bytes, or any changed byte), SL_ECORRUPT when the
 * sealed transaction does not parse. Seal and open of data log nothing
 * else: callers name the file, offset and txid.
 *
 * THREADS: a keyring is immutable after load except its subkey cache,
 * which is locked; seal and open may run on any number of threads at once.
 */
#ifndef SL_CRYPT_H
#define SL_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_CRYPT_KEY_SIZE 32
#define SL_CRYPT_KEY_ID_MAX 32
#define SL_CRYPT_STORE_ID_SIZE 16
#define SL_CRYPT_NONCE_SIZE 12
#define SL_CRYPT_TAG_SIZE 16
#define SL_CRYPT_OVERHEAD (SL_CRYPT_NONCE_SIZE + SL_CRYPT_TAG_SIZE)
/* A sealed frame payload is at most this many bytes longer than the plain
 * one: the overhead, four varints, a fixed64 and the field tags. */
#define SL_CRYPT_FRAME_EXTRA (SL_CRYPT_OVERHEAD + 64)
#define SL_CRYPT_ENV "SHIPLOG_KEY_FILE"
/* The largest plaintext a compressed sealed frame may declare: the log's
 * frame limit (store/log.h SL_FRAME_MAX, asserted equal there). */
#define SL_CRYPT_PLAIN_MAX (256u << 20)

typedef struct sl_keyring sl_keyring;

/* Load a key file (KEY FILE above). Errors: -errno (open, read),
 * SL_EINVAL (syntax, duplicate key id, no key, permissions), each logged
 * as "FILE:LINE: reason" (or "FILE: reason"). */
int sl_keyring_load(const char *path, sl_keyring **out);
/* path if not NULL, else $SHIPLOG_KEY_FILE if set and not empty, else
 * none: *out = NULL and 0 (no at-rest encryption). */
int sl_keyring_load_default(const char *path, sl_keyring **out);
void sl_keyring_free(sl_keyring *kr);
/* The key id that seals new files (the file's first key). Valid while kr. */
const char *sl_keyring_primary(const sl_keyring *kr);
bool sl_keyring_has(const sl_keyring *kr, const char *key_id);
/* KEY_ID syntax: [A-Za-z0-9_-]{1,32}. */
bool sl_crypt_key_id_valid(const char *key_id);
/* The key file's path, for messages. */
const char *sl_keyring_path(const sl_keyring *kr);

/* ---- frames ------------------------------------------------------------------- */
typedef struct sl_sealed_meta {
  uint64_t txid, commit_us, epoch, checksum;
  /* Parsed: the plaintext length of a COMPRESSED frame, 0 for one sealed
   * as it is. Sealing ignores it (its lz4 argument decides). */
  uint64_t lz4_len;
} sl_sealed_meta;

/* Seal the packed plaintext Transaction plain[0..len) whose clear fields m
 * gives, under key_id (NULL: the primary key), into out (room for len +
 * SL_CRYPT_FRAME_EXTRA); *out_len receives the sealed payload's length.
 * lz4: compress first when that makes the sealed payload smaller
 * (COMPRESSED above; only for readers that know SL_SEG_F_SEALED_LZ4).
 * Errors: SL_ENOTFOUND (key id), SL_ETOOBIG, -ENOMEM / SL_EFAILED (libcrypto). */
int sl_crypt_seal_frame(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const sl_sealed_meta *m, const uint8_t *plain, size_t len, bool lz4, uint8_t *out,
                        size_t *out_len);
/* Parse a sealed payload's clear fields without opening it. SL_ECORRUPT
 * if it is not a sealed transaction. *ct, *ct_len: the sealed bytes. */
int sl_crypt_frame_parse(const uint8_t *sealed, size_t len, sl_sealed_meta *m, const uint8_t **ct,
                         size_t *ct_len);
/* The room sl_crypt_open_frame needs for this sealed payload (its declared
 * plaintext length when compressed), 0 when it is not a sealed transaction. */
size_t sl_crypt_frame_open_size(const uint8_t *sealed, size_t len);
/* The decompression step of opening a COMPRESSED frame (public for the
 * fuzzer, which cannot forge a tag): the LZ4 block[0..len) into exactly
 * lz4_len bytes of out[0..cap). SL_ECORRUPT: lz4_len 0 or over
 * SL_CRYPT_PLAIN_MAX, or a block that does not decompress to exactly
 * lz4_len bytes; SL_ETOOBIG: cap < lz4_len. */
int sl_crypt_frame_inflate(const uint8_t *block, size_t len, uint64_t lz4_len, uint8_t *out, size_t cap);
/* Open a sealed payload written under key_id into out[0..cap) (cap at
 * least sl_crypt_frame_open_size, else SL_ETOOBIG); *out_len gets the
 * plaintext length, m (may be NULL) the clear fields. Errors: SL_ENOTFOUND,
 * SL_EAUTH, SL_ECORRUPT (above; also an authenticated LZ4 block that does
 * not decompress to its declared length). */
int sl_crypt_open_frame(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *sealed, size_t len, uint8_t *out, size_t cap, size_t *out_len,
                        sl_sealed_meta *m);

/* ---- dump chunks ------------------------------------------------------------- */
/* Seal in[0..len) into out (len + SL_CRYPT_OVERHEAD bytes) with additional
 * data aad[0..aad_len). Errors as for frames. */
int sl_crypt_seal_chunk(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                        uint8_t *out);
/* Open in[0..len) (len >= SL_CRYPT_OVERHEAD) into out (len -
 * SL_CRYPT_OVERHEAD bytes). Errors: SL_ENOTFOUND, SL_EAUTH, SL_ECORRUPT
 * (too short). */
int sl_crypt_open_chunk(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                        uint8_t *out);

#endif
