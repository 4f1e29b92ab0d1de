/*
 * crypt.c: key files, subkeys and AES-256-GCM sealing (crypt.h has the
 * formats).
 *
 * KEYS live in one malloc'd array for the keyring's life and are wiped
 * (OPENSSL_cleanse) when it is freed; nothing here prints key bytes.
 *
 * SUBKEYS. Every seal or open needs HKDF-SHA256(key, store id, info). A
 * frame's info changes only every 2^24 txids and a dump's never, so a
 * small direct-mapped cache of derived subkeys (keyed by key index, store
 * id and info) answers nearly every call; a miss derives and replaces the
 * slot. The cache is the keyring's only mutable state, under a mutex held
 * just long enough to copy 32 bytes out.
 *
 * CIPHER. Each thread keeps one EVP_CIPHER_CTX for sealing and one for
 * opening (pthread key, freed at thread exit) with the subkey last set in
 * it, so consecutive frames under one subkey set only a new nonce: no
 * allocation and no AES key schedule per frame (bench_crypt: that was
 * most of the cost for frames of a few hundred bytes).
 *
 * NONCES. Each thread draws 12 random bytes (RAND_bytes) once and then
 * counts: nonce = its 4 first bytes | the other 8 as a little-endian
 * counter, incremented per seal. Two threads (or processes) repeat a nonce
 * only if they drew the same 32-bit prefix and their counters, started at
 * random 64-bit values, overlap: less likely than with a fresh random nonce
 * per seal, and without RAND_bytes' getpid() system call per frame. A
 * forked child draws again (pthread_atfork), so it never continues its
 * parent's sequence. A subkey seals at most 2^24 frames (or one dump's
 * chunks).
 *
 * SEALED TRANSACTION ENCODING is written and parsed by hand (protobuf wire
 * format: varint fields 1-3, fixed64 field 5, length-delimited field 6,
 * varint field 7, in field order, as protobuf-c would write them), so the
 * module needs no generated code and sl_txn_peek reads fields 1-3
 * unchanged.
 *
 * COMPRESSION (crypt.h, COMPRESSED) runs before encryption, since
 * ciphertext does not compress: LZ4's block format into a per-thread
 * scratch buffer whose capacity is what may be saved, so a frame LZ4 does
 * not shrink costs one failed attempt and is sealed as it is. Opening
 * decrypts a compressed body into that scratch and decompresses it into
 * the caller's buffer. The scratch is wiped when its thread ends.
 */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_base.h"

#define KEY_FILE_MAX (1u << 20)
#define CACHE_SLOTS 16
#define INFO_MAX 32
#define FRAME_INFO "shiplog frame v1"
#define DUMP_INFO "shiplog dump v1"
#define FRAME_AAD_SIZE (4 * 8 + SL_CRYPT_STORE_ID_SIZE + SL_CRYPT_KEY_ID_MAX)
#define FRAME_AAD_LZ4_SIZE (FRAME_AAD_SIZE + 8) /* | le64 lz4_len */
#define FRAME_LZ4_MIN 64 /* smaller frames are sealed as they are */

typedef struct key {
  char id[SL_CRYPT_KEY_ID_MAX + 1];
  uint8_t bytes[SL_CRYPT_KEY_SIZE];
} key;

typedef struct cache_slot {
  bool used;
  size_t key_index;
  uint8_t store_id[SL_CRYPT_STORE_ID_SIZE];
  uint8_t info[INFO_MAX];
  size_t info_len;
  uint8_t subkey[SL_CRYPT_KEY_SIZE];
} cache_slot;

struct sl_keyring {
  char *path;
  key *keys;
  size_t n;
  pthread_mutex_t mu;
  cache_slot cache[CACHE_SLOTS];
};

/* ---- key file ------------------------------------------------------------------ */

static bool id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parse one non-comment line into k; NULL or the reason it is refused. */
static const char *parse_line(const char *p, const char *end, key *k) {
  const char *s = p;
  while (p < end && id_char(*p)) p++;
  size_t idlen = (size_t)(p - s);
  if (idlen == 0) return "expected KEY_ID HEX (KEY_ID: letters, digits, '_' and '-')";
  if (idlen > SL_CRYPT_KEY_ID_MAX) return "key id longer than 32 characters";
  if (p < end && *p != ' ' && *p != '\t') return "key id holds a character other than letters, digits, '_' and '-'";
  memcpy(k->id, s, idlen);
  k->id[idlen] = 0;
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  s = p;
  while (p < end && *p != ' ' && *p != '\t' && *p != '\r') p++;
  size_t hexlen = (size_t)(p - s);
  if (hexlen == 0) return "key id without a key (expected 64 hex digits)";
  if (hexlen != 2 * SL_CRYPT_KEY_SIZE) return "the key is not 64 hex digits (32 bytes)";
  for (size_t i = 0; i < SL_CRYPT_KEY_SIZE; i++) {
    int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return "the key holds a character that is not a hex digit";
    k->bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
  if (p < end) return "text after the key";
  return NULL;
}

int sl_keyring_load(const char *path, sl_keyring **out) {
  uint8_t *text = NULL;
  size_t len = 0;
  struct stat st;
  int rc;
  sl_keyring *kr = calloc(1, sizeof *kr);
  if (!kr) return -ENOMEM;
  pthread_mutex_init(&kr->mu, NULL);
  if (!(kr->path = strdup(path))) {
    rc = -ENOMEM;
    goto fail;
  }
  if (stat(path, &st)) {
    rc = -errno;
    sl_diag_error("key file %s: %s", path, sl_strerror(rc));
    goto fail;
  }
  if (st.st_mode & 077) {
    sl_diag_error("key file %s: permissions %04o are too open: it must not be accessible by group or "
                 "others (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
    rc = SL_EINVAL;
    goto fail;
  }
  if ((rc = sl_read_file(path, KEY_FILE_MAX, &text, &len))) {
    sl_diag_error("key file %s: %s", path, sl_strerror(rc));
    goto fail;
  }
  size_t lines = 1;
  for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
  if (!(kr->keys = calloc(lines, sizeof *kr->keys))) {
    rc = -ENOMEM;
    goto fail;
  }
  const char *p = (const char *)text, *end = p + len;
  for (unsigned lineno = 1; p < end; lineno++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end;
    const char *q = p;
    while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
    if (q < eol && *q != '#') {
      key *k = &kr->keys[kr->n];
      const char *why = parse_line(q, eol, k);
      if (why) {
        sl_diag_error("%s:%u: %s", path, lineno, why);
        rc = SL_EINVAL;
        goto fail;
      }
      for (size_t i = 0; i < kr->n; i++)
        if (!strcmp(kr->keys[i].id, k->id)) {
          sl_diag_error("%s:%u: key id %s is listed twice", path, lineno, k->id);
          rc = SL_EINVAL;
          goto fail;
        }
      kr->n++;
    }
    p = nl ? nl + 1 : end;
  }
  if (kr->n == 0) {
    sl_diag_error("key file %s holds no key (lines KEY_ID HEX)", path);
    rc = SL_EINVAL;
    goto fail;
  }
  OPENSSL_cleanse(text, len);
  free(text);
  *out = kr;
  return 0;
fail:
  if (text) OPENSSL_cleanse(text, len);
  free(text);
  sl_keyring_free(kr);
  return rc;
}

int sl_keyring_load_default(const char *path, sl_keyring **out) {
  *out = NULL;
  if (!path) path = getenv(SL_CRYPT_ENV);
  if (!path || !*path) return 0;
  return sl_keyring_load(path, out);
}

void sl_keyring_free(sl_keyring *kr) {
  if (!kr) return;
  if (kr->keys) OPENSSL_cleanse(kr->keys, kr->n * sizeof *kr->keys);
  OPENSSL_cleanse(kr->cache, sizeof kr->cache);
  free(kr->keys);
  free(kr->path);
  pthread_mutex_destroy(&kr->mu);
  free(kr);
}

const char *sl_keyring_primary(const sl_keyring *kr) { return kr->keys[0].id; }
const char *sl_keyring_path(const sl_keyring *kr) { return kr->path; }

static long key_index(const sl_keyring *kr, const char *key_id) {
  for (size_t i = 0; i < kr->n; i++)
    if (!strcmp(kr->keys[i].id, key_id)) return (long)i;
  return -1;
}

bool sl_keyring_has(const sl_keyring *kr, const char *key_id) { return key_index(kr, key_id) >= 0; }

bool sl_crypt_key_id_valid(const char *key_id) {
  size_t n = 0;
  for (; key_id[n]; n++)
    if (n >= SL_CRYPT_KEY_ID_MAX || !id_char(key_id[n])) return false;
  return n > 0;
}

/* ---- subkeys ------------------------------------------------------------------- */

static int hkdf(const uint8_t k[SL_CRYPT_KEY_SIZE], const uint8_t *salt, const uint8_t *info, size_t info_len,
                uint8_t out[SL_CRYPT_KEY_SIZE]) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  int rc = SL_EFAILED;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k, SL_CRYPT_KEY_SIZE),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SL_CRYPT_STORE_ID_SIZE),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
      OSSL_PARAM_construct_end()};
  if (ctx && EVP_KDF_derive(ctx, out, SL_CRYPT_KEY_SIZE, params) == 1) rc = 0;
  else sl_diag_error("HKDF-SHA256 (libcrypto) failed");
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return rc;
}

/* The subkey for (key_id, store id, info) into out. */
static int subkey(sl_keyring *kr, const char *key_id, const uint8_t *store_id, const uint8_t *info,
                  size_t info_len, uint8_t out[SL_CRYPT_KEY_SIZE]) {
  long ki = key_index(kr, key_id);
  if (ki < 0) {
    sl_diag_error("key id %s is not in the key file %s", key_id, kr->path);
    return SL_ENOTFOUND;
  }
  uint32_t h = sl_crc32c(sl_crc32c((uint32_t)ki, store_id, SL_CRYPT_STORE_ID_SIZE), info, info_len);
  cache_slot *c = &kr->cache[h % CACHE_SLOTS];
  pthread_mutex_lock(&kr->mu);
  if (c->used && c->key_index == (size_t)ki && c->info_len == info_len &&
      !memcmp(c->store_id, store_id, SL_CRYPT_STORE_ID_SIZE) && !memcmp(c->info, info, info_len)) {
    memcpy(out, c->subkey, SL_CRYPT_KEY_SIZE);
    pthread_mutex_unlock(&kr->mu);
    return 0;
  }
  pthread_mutex_unlock(&kr->mu);
  int rc = hkdf(kr->keys[ki].bytes, store_id, info, info_len, out);
  if (rc) return rc;
  pthread_mutex_lock(&kr->mu);
  c->used = true;
  c->key_index = (size_t)ki;
  memcpy(c->store_id, store_id, SL_CRYPT_STORE_ID_SIZE);
  memcpy(c->info, info, info_len);
  c->info_len = info_len;
  memcpy(c->subkey, out, SL_CRYPT_KEY_SIZE);
  pthread_mutex_unlock(&kr->mu);
  return 0;
}

static size_t frame_info(uint64_t txid, uint8_t info[INFO_MAX]) {
  size_t n = sizeof FRAME_INFO - 1;
  memcpy(info, FRAME_INFO, n);
  sl_put_le64(info + n, txid >> 24);
  return n + 8;
}

/* ---- AES-256-GCM ----------------------------------------------------------------- */

typedef struct cipher {
  EVP_CIPHER_CTX *ctx;
  bool keyed;
  uint8_t key[SL_CRYPT_KEY_SIZE];
} cipher;

typedef struct thread_ciphers {
  cipher seal, open;
  uint8_t nonce[SL_CRYPT_NONCE_SIZE];
  unsigned nonce_gen; /* fork_gen + 1 when drawn; 0: not drawn */
  uint8_t *lz4;       /* COMPRESSION scratch */
  size_t lz4_cap;
} thread_ciphers;

static pthread_key_t ciphers_key;
static pthread_once_t ciphers_once = PTHREAD_ONCE_INIT;
static atomic_uint fork_gen;

static void after_fork_child(void) { atomic_fetch_add(&fork_gen, 1); }

static void ciphers_free(void *p) {
  thread_ciphers *t = p;
  EVP_CIPHER_CTX_free(t->seal.ctx);
  EVP_CIPHER_CTX_free(t->open.ctx);
  if (t->lz4) OPENSSL_cleanse(t->lz4, t->lz4_cap);
  free(t->lz4);
  OPENSSL_cleanse(t, sizeof *t);
  free(t);
}

static void ciphers_init(void) {
  (void)pthread_key_create(&ciphers_key, ciphers_free);
  (void)pthread_atfork(NULL, NULL, after_fork_child);
}

static thread_ciphers *thread_state(void) {
  pthread_once(&ciphers_once, ciphers_init);
  thread_ciphers *t = pthread_getspecific(ciphers_key);
  if (!t) {
    if (!(t = calloc(1, sizeof *t))) return NULL;
    t->seal.ctx = EVP_CIPHER_CTX_new();
    t->open.ctx = EVP_CIPHER_CTX_new();
    if (!t->seal.ctx || !t->open.ctx || pthread_setspecific(ciphers_key, t)) {
      ciphers_free(t);
      return NULL;
    }
  }
  return t;
}

/* The calling thread's COMPRESSION scratch, at least n bytes; NULL when
 * out of memory. */
static uint8_t *thread_scratch(size_t n) {
  thread_ciphers *t = thread_state();
  if (!t) return NULL;
  if (t->lz4_cap < n) {
    size_t cap = n < 4096 ? 4096 : n;
    if (t->lz4) OPENSSL_cleanse(t->lz4, t->lz4_cap);
    free(t->lz4);
    t->lz4_cap = 0;
    if (!(t->lz4 = malloc(cap))) return NULL;
    t->lz4_cap = cap;
  }
  return t->lz4;
}

/* The next nonce of the calling thread (NONCES above) into out. */
static int next_nonce(uint8_t out[SL_CRYPT_NONCE_SIZE]) {
  thread_ciphers *t = thread_state();
  unsigned gen = atomic_load(&fork_gen) + 1;
  if (!t) return -ENOMEM;
  if (t->nonce_gen != gen) {
    if (RAND_bytes(t->nonce, SL_CRYPT_NONCE_SIZE) != 1) return SL_EFAILED;
    t->nonce_gen = gen;
  }
  sl_put_le64(t->nonce + 4, sl_get_le64(t->nonce + 4) + 1);
  memcpy(out, t->nonce, SL_CRYPT_NONCE_SIZE);
  return 0;
}

/* The calling thread's context for sealing or opening, set to key k and
 * nonce iv. NULL when out of memory or libcrypto fails. */
static EVP_CIPHER_CTX *cipher_for(bool seal, const uint8_t k[SL_CRYPT_KEY_SIZE], const uint8_t *iv) {
  thread_ciphers *t = thread_state();
  if (!t) return NULL;
  cipher *c = seal ? &t->seal : &t->open;
  bool same = c->keyed && !CRYPTO_memcmp(c->key, k, SL_CRYPT_KEY_SIZE);
  c->keyed = false;
  int ok = seal ? EVP_EncryptInit_ex(c->ctx, same ? NULL : EVP_aes_256_gcm(), NULL, same ? NULL : k, iv)
                : EVP_DecryptInit_ex(c->ctx, same ? NULL : EVP_aes_256_gcm(), NULL, same ? NULL : k, iv);
  if (ok != 1) return NULL;
  memcpy(c->key, k, SL_CRYPT_KEY_SIZE);
  c->keyed = true;
  return c->ctx;
}

/* out = nonce | ciphertext | tag. */
static int gcm_seal(const uint8_t k[SL_CRYPT_KEY_SIZE], const uint8_t *aad, size_t aad_len, const uint8_t *in,
                    size_t len, uint8_t *out) {
  EVP_CIPHER_CTX *ctx;
  int n, rc = SL_EFAILED;
  if (len > INT32_MAX || aad_len > INT32_MAX) return SL_ETOOBIG;
  if ((rc = next_nonce(out))) goto fail;
  rc = SL_EFAILED;
  if (!(ctx = cipher_for(true, k, out)) ||
      EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
      EVP_EncryptUpdate(ctx, out + SL_CRYPT_NONCE_SIZE, &n, in, (int)len) != 1 ||
      EVP_EncryptFinal_ex(ctx, out + SL_CRYPT_NONCE_SIZE + len, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SL_CRYPT_TAG_SIZE, out + SL_CRYPT_NONCE_SIZE + len) != 1)
    goto fail;
  rc = 0;
fail:
  if (rc) sl_diag_error("AES-256-GCM seal (libcrypto) failed");
  return rc;
}

static int gcm_open(const uint8_t k[SL_CRYPT_KEY_SIZE], const uint8_t *aad, size_t aad_len, const uint8_t *in,
                    size_t len, uint8_t *out) {
  if (len < SL_CRYPT_OVERHEAD) return SL_ECORRUPT;
  if (len > INT32_MAX || aad_len > INT32_MAX) return SL_ETOOBIG;
  size_t ct_len = len - SL_CRYPT_OVERHEAD;
  EVP_CIPHER_CTX *ctx;
  int n, rc = SL_EFAILED;
  if (!(ctx = cipher_for(false, k, in)) ||
      EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
      EVP_DecryptUpdate(ctx, out, &n, in + SL_CRYPT_NONCE_SIZE, (int)ct_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SL_CRYPT_TAG_SIZE,
                          (void *)(in + SL_CRYPT_NONCE_SIZE + ct_len)) != 1)
    goto fail;
  /* A tag mismatch: wrong key bytes or a changed byte. Nothing decrypted
   * may be used, so wipe it. */
  rc = EVP_DecryptFinal_ex(ctx, out + ct_len, &n) == 1 ? 0 : SL_EAUTH;
  if (rc) OPENSSL_cleanse(out, ct_len);
fail:
  if (rc == SL_EFAILED) sl_diag_error("AES-256-GCM open (libcrypto) failed");
  return rc;
}

/* ---- sealed transactions -------------------------------------------------------- */

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return SL_ECORRUPT;
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return SL_ECORRUPT;
}

/* The frame's additional data; returns its length (COMPRESSED: le64
 * lz4_len follows). */
static size_t frame_aad(uint8_t aad[FRAME_AAD_LZ4_SIZE], const sl_sealed_meta *m, uint64_t lz4_len,
                        const uint8_t *store_id, const char *key_id) {
  memset(aad, 0, FRAME_AAD_SIZE);
  sl_put_le64(aad, m->txid);
  sl_put_le64(aad + 8, m->commit_us);
  sl_put_le64(aad + 16, m->epoch);
  sl_put_le64(aad + 24, m->checksum);
  memcpy(aad + 32, store_id, SL_CRYPT_STORE_ID_SIZE);
  memcpy(aad + 32 + SL_CRYPT_STORE_ID_SIZE, key_id, strnlen(key_id, SL_CRYPT_KEY_ID_MAX));
  if (!lz4_len) return FRAME_AAD_SIZE;
  sl_put_le64(aad + FRAME_AAD_SIZE, lz4_len);
  return FRAME_AAD_LZ4_SIZE;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

int sl_crypt_seal_frame(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const sl_sealed_meta *m, const uint8_t *plain, size_t len, bool lz4, uint8_t *out,
                        size_t *out_len) {
  uint8_t info[INFO_MAX], k[SL_CRYPT_KEY_SIZE], aad[FRAME_AAD_LZ4_SIZE];
  const uint8_t *body = plain;
  size_t body_len = len;
  uint64_t lz4_len = 0;
  if (!key_id) key_id = sl_keyring_primary(kr);
  if (len > UINT32_MAX - SL_CRYPT_FRAME_EXTRA) return SL_ETOOBIG;
  if (lz4 && len >= FRAME_LZ4_MIN && len <= SL_CRYPT_PLAIN_MAX) {
    /* Worth it only if the block and field 7 together are shorter. */
    size_t room = len - 1 - varint_len(len) - 1;
    uint8_t *z = thread_scratch(room);
    if (!z) return -ENOMEM;
    int n = LZ4_compress_default((const char *)plain, (char *)z, (int)len, (int)room);
    if (n > 0) {
      body = z;
      body_len = (size_t)n;
      lz4_len = len;
    }
  }
  int rc = subkey(kr, key_id, store_id, info, frame_info(m->txid, info), k);
  if (rc) return rc;
  uint8_t *p = out;
  *p++ = 0x08;
  p = put_varint(p, m->txid);
  *p++ = 0x10;
  p = put_varint(p, m->commit_us);
  *p++ = 0x18;
  p = put_varint(p, m->epoch);
  *p++ = 0x29;
  sl_put_le64(p, m->checksum);
  p += 8;
  *p++ = 0x32;
  p = put_varint(p, body_len + SL_CRYPT_OVERHEAD);
  rc = gcm_seal(k, aad, frame_aad(aad, m, lz4_len, store_id, key_id), body, body_len, p);
  OPENSSL_cleanse(k, sizeof k);
  if (rc) return rc;
  p += body_len + SL_CRYPT_OVERHEAD;
  if (lz4_len) {
    *p++ = 0x38;
    p = put_varint(p, lz4_len);
  }
  *out_len = (size_t)(p - out);
  return 0;
}

int sl_crypt_frame_parse(const uint8_t *sealed, size_t len, sl_sealed_meta *m, const uint8_t **ct,
                         size_t *ct_len) {
  const uint8_t *p = sealed, *end = sealed + len;
  unsigned seen = 0;
  memset(m, 0, sizeof *m);
  *ct = NULL;
  *ct_len = 0;
  while (p < end) {
    uint64_t tag, v;
    if (get_varint(&p, end, &tag)) return SL_ECORRUPT;
    switch (tag) {
    case 0x08: case 0x10: case 0x18:
      if (get_varint(&p, end, &v)) return SL_ECORRUPT;
      if (tag == 0x08) m->txid = v;
      else if (tag == 0x10) m->commit_us = v;
      else m->epoch = v;
      break;
    case 0x29:
      if (end - p < 8) return SL_ECORRUPT;
      m->checksum = sl_get_le64(p);
      p += 8;
      break;
    case 0x32:
      if (get_varint(&p, end, &v) || v > (uint64_t)(end - p) || v < SL_CRYPT_OVERHEAD) return SL_ECORRUPT;
      *ct = p;
      *ct_len = (size_t)v;
      p += v;
      break;
    case 0x38: /* COMPRESSED: the declared length is bounded before anything trusts it */
      if (get_varint(&p, end, &v) || v == 0 || v > SL_CRYPT_PLAIN_MAX) return SL_ECORRUPT;
      m->lz4_len = v;
      break;
    default:
      return SL_ECORRUPT; /* ops or unknown fields beside a sealed body */
    }
    seen |= 1u << (tag >> 3);
  }
  /* txid, commit time and the sealed body are required. */
  return (seen & 0x46) == 0x46 ? 0 : SL_ECORRUPT;
}

int sl_crypt_frame_inflate(const uint8_t *block, size_t len, uint64_t lz4_len, uint8_t *out, size_t cap) {
  if (lz4_len == 0 || lz4_len > SL_CRYPT_PLAIN_MAX || len > INT32_MAX) return SL_ECORRUPT;
  if (cap < lz4_len) return SL_ETOOBIG;
  int n = LZ4_decompress_safe((const char *)block, (char *)out, (int)len, (int)lz4_len);
  return n == (int)lz4_len ? 0 : SL_ECORRUPT;
}

size_t sl_crypt_frame_open_size(const uint8_t *sealed, size_t len) {
  sl_sealed_meta m;
  const uint8_t *ct;
  size_t ct_len;
  if (sl_crypt_frame_parse(sealed, len, &m, &ct, &ct_len)) return 0;
  return m.lz4_len ? (size_t)m.lz4_len : ct_len - SL_CRYPT_OVERHEAD;
}

int sl_crypt_open_frame(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *sealed, size_t len, uint8_t *out, size_t cap, size_t *out_len,
                        sl_sealed_meta *mout) {
  uint8_t info[INFO_MAX], k[SL_CRYPT_KEY_SIZE], aad[FRAME_AAD_LZ4_SIZE];
  sl_sealed_meta m;
  const uint8_t *ct;
  size_t ct_len;
  int rc = sl_crypt_frame_parse(sealed, len, &m, &ct, &ct_len);
  if (rc) return rc;
  size_t body_len = ct_len - SL_CRYPT_OVERHEAD, plain_len = m.lz4_len ? (size_t)m.lz4_len : body_len;
  if (cap < plain_len) return SL_ETOOBIG;
  uint8_t *body = m.lz4_len ? thread_scratch(body_len) : out;
  if (!body) return -ENOMEM;
  if ((rc = subkey(kr, key_id, store_id, info, frame_info(m.txid, info), k))) return rc;
  rc = gcm_open(k, aad, frame_aad(aad, &m, m.lz4_len, store_id, key_id), ct, ct_len, body);
  OPENSSL_cleanse(k, sizeof k);
  if (rc) return rc;
  /* Authenticated, so written by a sealer; a block that does not give its
   * declared length is still refused, never half used. */
  if (m.lz4_len && (rc = sl_crypt_frame_inflate(body, body_len, m.lz4_len, out, cap))) return rc;
  *out_len = plain_len;
  if (mout) *mout = m;
  return 0;
}

/* ---- dump chunks ------------------------------------------------------------------ */

int sl_crypt_seal_chunk(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                        uint8_t *out) {
  uint8_t k[SL_CRYPT_KEY_SIZE];
  if (!key_id) key_id = sl_keyring_primary(kr);
  int rc = subkey(kr, key_id, store_id, (const uint8_t *)DUMP_INFO, sizeof DUMP_INFO - 1, k);
  if (rc) return rc;
  rc = gcm_seal(k, aad, aad_len, in, len, out);
  OPENSSL_cleanse(k, sizeof k);
  return rc;
}

int sl_crypt_open_chunk(sl_keyring *kr, const char *key_id, const uint8_t store_id[SL_CRYPT_STORE_ID_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                        uint8_t *out) {
  uint8_t k[SL_CRYPT_KEY_SIZE];
  if (len < SL_CRYPT_OVERHEAD) return SL_ECORRUPT;
  int rc = subkey(kr, key_id, store_id, (const uint8_t *)DUMP_INFO, sizeof DUMP_INFO - 1, k);
  if (rc) return rc;
  rc = gcm_open(k, aad, aad_len, in, len, out);
  OPENSSL_cleanse(k, sizeof k);
  return rc;
}
