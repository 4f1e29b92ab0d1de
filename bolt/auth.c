/*
 * Users and passwords for Bolt logins (the file format is in bolt.h, USERS
 * FILE), and the per-peer slowdown of failed logins.
 *
 * Passwords are kept as scrypt hashes (EVP_PBE_scrypt, N = 2^15, r = 8,
 * p = 1: 32 MiB and ~0.1 s a try), with 16 random bytes of salt each, so a
 * stolen file costs an attacker that much per guess. A check of an unknown
 * user hashes too (against a fixed dummy), so timing does not tell which
 * users exist. At most two hashes run at once (memory: 2 x 32 MiB), whatever
 * the number of connections logging in.
 *
 * The throttle remembers, per client address (the port ignored), the
 * failures in a row; the k-th answer waits 2^(k-1) x base up to a cap. A
 * success clears it; entries older than a minute are forgotten; the table is
 * bounded (the least recently seen entry gives way).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bolt.h"

#define USER_MAX 64
#define SALT_SIZE 16
#define HASH_SIZE 32
#define LOG2N_NEW 15
#define R_NEW 8
#define P_NEW 1
#define USERS_FILE_MAX (1u << 20)

typedef struct user_entry {
  char name[USER_MAX + 1];
  sl_bolt_role role;
  int log2n, r, p;
  uint8_t salt[SALT_SIZE], hash[HASH_SIZE];
} user_entry;

struct sl_bolt_users {
  user_entry *users;
  size_t n;
};

static pthread_mutex_t hash_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hash_cond = PTHREAD_COND_INITIALIZER;
static int hashes_running;

const char *sl_bolt_role_name(sl_bolt_role r) {
  switch (r) {
  case SL_BOLT_ROLE_READER: return "reader";
  case SL_BOLT_ROLE_EDITOR: return "editor";
  case SL_BOLT_ROLE_ADMIN: return "admin";
  default: return "none";
  }
}

sl_bolt_role sl_bolt_role_parse(const char *name) {
  if (!strcmp(name, "reader")) return SL_BOLT_ROLE_READER;
  if (!strcmp(name, "editor")) return SL_BOLT_ROLE_EDITOR;
  if (!strcmp(name, "admin")) return SL_BOLT_ROLE_ADMIN;
  return SL_BOLT_ROLE_NONE;
}

static bool user_name_ok(const char *u, size_t n) {
  if (n == 0 || n > USER_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)u[i];
    if (c <= ' ' || c == ':' || c == 0x7F) return false;
    if (c >= 0x80) {
      uint32_t cp;
      size_t k = sl_utf8_decode(u + i, n - i, &cp);
      if (!k) return false;
      i += k - 1;
    }
  }
  return true;
}

static int scrypt(const char *pw, size_t pwlen, const uint8_t *salt, int log2n, int r, int p, uint8_t out[HASH_SIZE]) {
  uint64_t n = 1ull << log2n;
  uint64_t maxmem = 128ull * n * (uint64_t)r * (uint64_t)p + (1u << 20) + 128ull * (uint64_t)r * 2;
  pthread_mutex_lock(&hash_lock);
  while (hashes_running >= 2) pthread_cond_wait(&hash_cond, &hash_lock);
  hashes_running++;
  pthread_mutex_unlock(&hash_lock);
  int ok = EVP_PBE_scrypt(pw, pwlen, salt, SALT_SIZE, n, (uint64_t)r, (uint64_t)p, maxmem, out, HASH_SIZE);
  pthread_mutex_lock(&hash_lock);
  hashes_running--;
  pthread_cond_signal(&hash_cond);
  pthread_mutex_unlock(&hash_lock);
  return ok == 1 ? 0 : -ENOMEM;
}

static int unhex(const char *s, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char c = s[2 * i + k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v << 4 | d;
    }
    out[i] = (uint8_t)v;
  }
  return 0;
}

/* One line "USER ROLE $scrypt$L$R$P$SALT$HASH" (without its newline). */
static int parse_line(const char *line, size_t len, user_entry *e, const char **why) {
  char buf[512];
  if (len >= sizeof buf) return *why = "line too long", SL_EINVAL;
  memcpy(buf, line, len);
  buf[len] = 0;
  char *sp1 = strchr(buf, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) return *why = "expected three fields: USER ROLE HASH", SL_EINVAL;
  *sp1 = *sp2 = 0;
  if (!user_name_ok(buf, strlen(buf))) return *why = "bad user name", SL_EINVAL;
  snprintf(e->name, sizeof e->name, "%.64s", buf); /* user_name_ok: at most 64 bytes */
  if ((e->role = sl_bolt_role_parse(sp1 + 1)) == SL_BOLT_ROLE_NONE)
    return *why = "role must be reader, editor or admin", SL_EINVAL;
  char salt[2 * SALT_SIZE + 1], hash[2 * HASH_SIZE + 1];
  int used = 0;
  if (sscanf(sp2 + 1, "$scrypt$%d$%d$%d$%32[0-9a-f]$%64[0-9a-f]%n", &e->log2n, &e->r, &e->p, salt, hash, &used) != 5 ||
      (size_t)used != strlen(sp2 + 1) || strlen(salt) != 2 * SALT_SIZE || strlen(hash) != 2 * HASH_SIZE)
    return *why = "hash must be $scrypt$LOG2N$R$P$SALT(32 hex)$HASH(64 hex)", SL_EINVAL;
  if (e->log2n < 10 || e->log2n > 20 || e->r < 1 || e->r > 32 || e->p < 1 || e->p > 16)
    return *why = "scrypt parameters out of range (LOG2N 10..20, R 1..32, P 1..16)", SL_EINVAL;
  unhex(salt, SALT_SIZE, e->salt);
  unhex(hash, HASH_SIZE, e->hash);
  return 0;
}

/* Open FILE for reading, refusing one that group or others may read. */
static int open_private(const char *path, int *fd_out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    sl_diag_error("%s: not a regular file", path);
    return SL_EINVAL;
  }
  if (st.st_mode & 077) {
    close(fd);
    sl_diag_error("%s: users file is accessible by group or others (mode %04o); chmod 600 it", path,
                  (unsigned)(st.st_mode & 07777));
    return -EPERM;
  }
  *fd_out = fd;
  return 0;
}

static int read_all(int fd, sl_buf *b) {
  for (;;) {
    if (b->len + 4096 > b->cap && sl_buf_reserve(b, b->cap ? 2 * b->cap : 8192)) return -ENOMEM;
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return 0;
    b->len += (size_t)n;
    if (b->len > USERS_FILE_MAX) return SL_ETOOBIG;
  }
}

/* Each non-comment line of b through parse_line into u (NULL: only count
 * and check). */
static int parse_file(const char *path, const sl_buf *b, sl_bolt_users *u) {
  size_t pos = 0, lineno = 0;
  while (pos < b->len) {
    const char *line = (const char *)b->data + pos;
    const char *nl = memchr(line, '\n', b->len - pos);
    size_t len = nl ? (size_t)(nl - line) : b->len - pos;
    pos += len + (nl != NULL);
    lineno++;
    if (len && line[len - 1] == '\r') len--;
    if (!len || line[0] == '#') continue;
    user_entry e;
    const char *why = "";
    if (parse_line(line, len, &e, &why)) {
      sl_diag_error("%s:%zu: %s", path, lineno, why);
      return SL_EINVAL;
    }
    for (size_t i = 0; u && i < u->n; i++)
      if (!strcmp(u->users[i].name, e.name)) {
        sl_diag_error("%s:%zu: user '%s' given twice", path, lineno, e.name);
        return SL_EINVAL;
      }
    if (u) {
      user_entry *grown = realloc(u->users, (u->n + 1) * sizeof *grown);
      if (!grown) return -ENOMEM;
      u->users = grown;
      u->users[u->n++] = e;
    }
  }
  return 0;
}

int sl_bolt_users_load(const char *path, sl_bolt_users **out) {
  sl_buf b = {0};
  sl_bolt_users *u = calloc(1, sizeof *u);
  int fd = -1, rc;
  if (!u) return -ENOMEM;
  if ((rc = open_private(path, &fd))) {
    if (rc != -EPERM && rc != SL_EINVAL) sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto fail;
  }
  if ((rc = read_all(fd, &b))) {
    sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto fail;
  }
  if ((rc = parse_file(path, &b, u))) goto fail;
  close(fd);
  sl_buf_free(&b);
  *out = u;
  return 0;
fail:
  if (fd >= 0) close(fd);
  sl_buf_free(&b);
  sl_bolt_users_free(u);
  return rc;
}

void sl_bolt_users_free(sl_bolt_users *u) {
  if (!u) return;
  OPENSSL_cleanse(u->users, u->n * sizeof *u->users);
  free(u->users);
  free(u);
}

int sl_bolt_users_check(sl_bolt_users *u, const char *user, const char *password, size_t pwlen, sl_bolt_role *role) {
  static const user_entry dummy = {.log2n = LOG2N_NEW, .r = R_NEW, .p = P_NEW};
  const user_entry *e = NULL;
  for (size_t i = 0; i < u->n && user; i++)
    if (!strcmp(u->users[i].name, user)) e = &u->users[i];
  const user_entry *h = e ? e : &dummy;
  uint8_t got[HASH_SIZE];
  if (scrypt(password, pwlen, h->salt, h->log2n, h->r, h->p, got)) return -ENOMEM;
  bool same = CRYPTO_memcmp(got, h->hash, HASH_SIZE) == 0;
  OPENSSL_cleanse(got, sizeof got);
  if (!e || !same) return SL_EAUTH;
  *role = e->role;
  return 0;
}

int sl_bolt_passwd(const char *path, const char *user, const char *password, size_t pwlen, sl_bolt_role role,
                   bool *added) {
  sl_buf in = {0}, out = {0};
  char tmp[4096], line[512];
  int fd = -1, tfd = -1, rc = 0;
  bool made_tmp = false;
  if (!user_name_ok(user, strlen(user))) {
    sl_diag_error("user name '%s': 1..%d bytes of UTF-8 without spaces, ':' or control characters", user, USER_MAX);
    return SL_EINVAL;
  }
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    sl_diag_error("%s: %s", path, sl_strerror(-ENAMETOOLONG));
    return -ENAMETOOLONG;
  }
  rc = open_private(path, &fd);
  if (rc == -ENOENT) {
    rc = 0;
  } else if (rc) {
    if (rc != -EPERM && rc != SL_EINVAL) sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto out;
  } else if ((rc = read_all(fd, &in)) || (rc = parse_file(path, &in, NULL))) {
    if (rc != SL_EINVAL) sl_diag_error("%s: %s", path, sl_strerror(rc));
    goto out;
  }
  user_entry e = {.log2n = LOG2N_NEW, .r = R_NEW, .p = P_NEW};
  if (RAND_bytes(e.salt, SALT_SIZE) != 1) {
    sl_diag_error("no random bytes for a salt");
    rc = -EIO;
    goto out;
  }
  if ((rc = scrypt(password, pwlen, e.salt, e.log2n, e.r, e.p, e.hash))) {
    sl_diag_error("scrypt failed: %s", sl_strerror(rc));
    goto out;
  }
  char salt_hex[2 * SALT_SIZE + 1], hash_hex[2 * HASH_SIZE + 1];
  sl_hex_encode(e.salt, SALT_SIZE, salt_hex);
  sl_hex_encode(e.hash, HASH_SIZE, hash_hex);
  /* copy the file, replacing USER's line (keeping its role unless given) */
  *added = true;
  size_t pos = 0, ulen = strlen(user);
  sl_bolt_role new_role = role;
  if ((rc = sl_buf_reserve(&out, in.len + 512))) goto out;
  if (!in.len) {
    static const char head[] = "# shiplog users file (shiplog passwd): USER ROLE $scrypt$LOG2N$R$P$SALT$HASH\n";
    memcpy(out.data, head, sizeof head - 1);
    out.len = sizeof head - 1;
  }
  while (pos < in.len) {
    const char *l = (const char *)in.data + pos;
    const char *nl = memchr(l, '\n', in.len - pos);
    size_t len = nl ? (size_t)(nl - l) : in.len - pos;
    pos += len + (nl != NULL);
    if (len > ulen && !memcmp(l, user, ulen) && l[ulen] == ' ' && l[0] != '#') {
      *added = false;
      if (role == SL_BOLT_ROLE_NONE) {
        user_entry old;
        const char *why;
        if (parse_line(l, len && l[len - 1] == '\r' ? len - 1 : len, &old, &why) == 0) new_role = old.role;
      }
      continue;
    }
    memcpy(out.data + out.len, l, len);
    out.len += len;
    out.data[out.len++] = '\n';
  }
  if (new_role == SL_BOLT_ROLE_NONE) new_role = SL_BOLT_ROLE_READER;
  int n = snprintf(line, sizeof line, "%s %s $scrypt$%d$%d$%d$%s$%s\n", user, sl_bolt_role_name(new_role), e.log2n,
                   e.r, e.p, salt_hex, hash_hex);
  memcpy(out.data + out.len, line, (size_t)n);
  out.len += (size_t)n;
  tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (tfd < 0) {
    rc = -errno;
    sl_diag_error("%s: %s", tmp, sl_strerror(rc));
    goto out;
  }
  made_tmp = true;
  if ((rc = fchmod(tfd, 0600) < 0 ? -errno : 0) || (rc = sl_write_all(tfd, out.data, out.len)) ||
      (rc = sl_fsync(tfd))) {
    sl_diag_error("%s: %s", tmp, sl_strerror(rc));
    goto out;
  }
  close(tfd);
  tfd = -1;
  rc = sl_rename_durable(tmp, path);
out:
  if (tfd >= 0) close(tfd);
  if (rc && made_tmp) unlink(tmp);
  if (fd >= 0) close(fd);
  if (out.data) OPENSSL_cleanse(out.data, out.len);
  sl_buf_free(&in);
  sl_buf_free(&out);
  return rc;
}

/* ---- throttle ---------------------------------------------------------------------------- */
#define THROTTLE_SLOTS 1024
#define THROTTLE_FORGET_MS 60000

struct sl_bolt_throttle {
  pthread_mutex_t lock;
  int base_ms, max_ms;
  struct slot {
    char host[64];
    int fails;
    uint64_t last_ms;
  } slots[THROTTLE_SLOTS];
};

int sl_bolt_throttle_new(int base_ms, int max_ms, sl_bolt_throttle **out) {
  sl_bolt_throttle *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  pthread_mutex_init(&t->lock, NULL);
  t->base_ms = base_ms;
  t->max_ms = max_ms;
  *out = t;
  return 0;
}

void sl_bolt_throttle_free(sl_bolt_throttle *t) {
  if (!t) return;
  pthread_mutex_destroy(&t->lock);
  free(t);
}

/* "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1" */
static void host_of(const char *address, char host[64]) {
  const char *end = strrchr(address, ':');
  const char *start = address;
  if (address[0] == '[') {
    start = address + 1;
    end = strchr(address, ']');
  }
  size_t n = end && end >= start ? (size_t)(end - start) : strlen(start);
  if (n > 63) n = 63;
  memcpy(host, start, n);
  host[n] = 0;
}

/* The slot of host (a new or the oldest one when create); locked. */
static struct slot *find_slot(sl_bolt_throttle *t, const char *host, bool create, uint64_t now) {
  struct slot *oldest = &t->slots[0];
  for (int i = 0; i < THROTTLE_SLOTS; i++) {
    struct slot *s = &t->slots[i];
    if (s->host[0] && now - s->last_ms > THROTTLE_FORGET_MS) s->host[0] = 0;
    if (s->host[0] && !strcmp(s->host, host)) return s;
    if (!s->host[0] || s->last_ms < oldest->last_ms) oldest = s;
  }
  if (!create) return NULL;
  memset(oldest, 0, sizeof *oldest);
  snprintf(oldest->host, sizeof oldest->host, "%s", host);
  return oldest;
}

int sl_bolt_throttle_delay_ms(sl_bolt_throttle *t, const char *address) {
  char host[64];
  host_of(address, host);
  uint64_t now = sl_mono_ns() / 1000000;
  pthread_mutex_lock(&t->lock);
  struct slot *s = find_slot(t, host, false, now);
  int fails = s ? s->fails : 0;
  pthread_mutex_unlock(&t->lock);
  if (!fails) return 0;
  long long d = (long long)t->base_ms << (fails - 1 > 20 ? 20 : fails - 1);
  return d > t->max_ms ? t->max_ms : (int)d;
}

void sl_bolt_throttle_result(sl_bolt_throttle *t, const char *address, bool ok) {
  char host[64];
  host_of(address, host);
  uint64_t now = sl_mono_ns() / 1000000;
  pthread_mutex_lock(&t->lock);
  struct slot *s = find_slot(t, host, !ok, now);
  if (s) {
    if (ok) s->host[0] = 0;
    else {
      s->fails++;
      s->last_ms = now;
    }
  }
  pthread_mutex_unlock(&t->lock);
}
