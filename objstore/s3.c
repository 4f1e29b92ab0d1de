/*
 * s3.c: the S3 requests of objstore.h over one libcurl easy handle.
 *
 * One function, request(), does every exchange: it builds the path-style
 * URL (endpoint/bucket/key?query, the query already in SigV4 canonical
 * form: parameters sorted, values escaped, "name=" for bare names, because
 * libcurl 7.88 signs the query as given), sets the body source (a file
 * range through a read callback, or a buffer) with its exact length, and
 * collects the response body and the headers objstore cares about (ETag,
 * Content-Length, x-amz-meta-crc32c). It retries 5xx and connection
 * errors with jittered backoff; a sink (GET into a file) is rewound before
 * each try. Everything else builds on it: multipart is CreateMultipartUpload
 * (POST ?uploads=), one UploadPart per part_size bytes, then
 * CompleteMultipartUpload with the parts' ETags -- or AbortMultipartUpload
 * on any failure. XML answers are read with strstr: the few elements used
 * (UploadId, Key, NextContinuationToken, IsTruncated, Code, Message) never
 * nest in a way that fools it.
 */
#include "objstore.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sl_base.h"

#define PART_MIN (5ull << 20)
#define PART_DEFAULT (16ull << 20)

struct sl_objstore {
  CURL *curl;
  char endpoint[512], region[64], bucket[64];
  char userpwd[512], sigv4[128];
  int retries;
  uint64_t part_size;
  int timeout_ms;
  const atomic_bool *cancel;
};

/* ---- names ---------------------------------------------------------------------- */

bool sl_s3_is_url(const char *text) { return text && strncmp(text, "s3://", 5) == 0; }

bool sl_s3_key_valid(const char *key) {
  if (!key || !*key || *key == '/' || strlen(key) > 900) return false;
  for (const char *p = key; *p; p++) {
    if (!isalnum((unsigned char)*p) && !strchr("._/-", *p)) return false;
    if (*p == '/' && p[1] == '/') return false;
  }
  return true;
}

int sl_s3_url_parse(const char *text, sl_s3_url *out) {
  memset(out, 0, sizeof *out);
  if (!sl_s3_is_url(text)) return SL_EINVAL;
  const char *b = text + 5, *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  if (blen < 3 || blen >= sizeof out->bucket) return SL_EINVAL;
  for (size_t i = 0; i < blen; i++)
    if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) && b[i] != '.' && b[i] != '-')
      return SL_EINVAL;
  memcpy(out->bucket, b, blen);
  if (slash) {
    const char *p = slash + 1;
    size_t plen = strlen(p);
    while (plen && p[plen - 1] == '/') plen--;
    if (plen >= sizeof out->prefix) return SL_EINVAL;
    memcpy(out->prefix, p, plen);
    if (plen && !sl_s3_key_valid(out->prefix)) return SL_EINVAL;
  }
  return 0;
}

/* ---- credentials ------------------------------------------------------------------ */

/* KEY = VALUE in section [profile] of a credentials file. */
static int cred_file_get(const char *path, const char *profile, const char *name, char *out, size_t len) {
  FILE *f = fopen(path, "r");
  if (!f) return SL_ENOTFOUND;
  char line[1024];
  bool in = false;
  int rc = SL_ENOTFOUND;
  while (rc && fgets(line, sizeof line, f)) {
    char *s = line, *e;
    while (isspace((unsigned char)*s)) s++;
    for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);) *--e = 0;
    if (*s == '[') {
      in = strlen(s) == strlen(profile) + 2 && strncmp(s + 1, profile, strlen(profile)) == 0;
      continue;
    }
    char *eq = strchr(s, '=');
    if (!in || !eq) continue;
    char *k = s, *ke = eq, *v = eq + 1;
    while (ke > k && isspace((unsigned char)ke[-1])) ke--;
    while (isspace((unsigned char)*v)) v++;
    if ((size_t)(ke - k) == strlen(name) && strncmp(k, name, (size_t)(ke - k)) == 0) {
      snprintf(out, len, "%s", v);
      rc = 0;
    }
  }
  fclose(f);
  return rc;
}

static int credentials(const sl_objstore_options *o, char *key, size_t klen, char *secret, size_t slen) {
  const char *k = o->access_key ? o->access_key : getenv("AWS_ACCESS_KEY_ID");
  const char *s = o->secret_key ? o->secret_key : getenv("AWS_SECRET_ACCESS_KEY");
  if (k && *k && s && *s) {
    snprintf(key, klen, "%s", k);
    snprintf(secret, slen, "%s", s);
    return 0;
  }
  char path[4096];
  const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
  const char *profile = getenv("AWS_PROFILE");
  if (file) snprintf(path, sizeof path, "%s", file);
  else snprintf(path, sizeof path, "%s/.aws/credentials", home ? home : "");
  if (!profile || !*profile) profile = "default";
  if (cred_file_get(path, profile, "aws_access_key_id", key, klen) == 0 &&
      cred_file_get(path, profile, "aws_secret_access_key", secret, slen) == 0)
    return 0;
  sl_diag_error("S3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile [%s] in %s",
               profile, path);
  return SL_EINVAL;
}

/* ---- handle ---------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int sl_objstore_open(const sl_objstore_options *o, sl_objstore **out) {
  const char *ep = o->endpoint ? o->endpoint : getenv("SL_S3_ENDPOINT");
  if (!ep || !*ep) ep = getenv("AWS_ENDPOINT_URL");
  const char *region = o->region ? o->region : getenv("AWS_REGION");
  if (!region || !*region) region = getenv("AWS_DEFAULT_REGION");
  if (!region || !*region) region = "us-east-1";
  char key[256], secret[256];
  *out = NULL;
  if (!ep || !*ep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))) {
    sl_diag_error("S3: no endpoint (--s3-endpoint http(s)://HOST:PORT or SL_S3_ENDPOINT)%s%s", ep ? ": " : "",
                 ep ? ep : "");
    return SL_EINVAL;
  }
  if (!o->bucket || !*o->bucket) {
    sl_diag_error("S3: no bucket");
    return SL_EINVAL;
  }
  int rc = credentials(o, key, sizeof key, secret, sizeof secret);
  if (rc) return rc;
  pthread_once(&curl_once, curl_init);
  sl_objstore *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  if (!(s->curl = curl_easy_init())) {
    free(s);
    return -ENOMEM;
  }
  snprintf(s->endpoint, sizeof s->endpoint, "%s", ep);
  for (size_t n = strlen(s->endpoint); n && s->endpoint[n - 1] == '/';) s->endpoint[--n] = 0;
  snprintf(s->region, sizeof s->region, "%s", region);
  snprintf(s->bucket, sizeof s->bucket, "%s", o->bucket);
  snprintf(s->userpwd, sizeof s->userpwd, "%s:%s", key, secret);
  snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", s->region);
  s->retries = o->retries == 0 ? 4 : o->retries < 0 ? 0 : o->retries;
  s->part_size = o->part_size ? SL_MAX(o->part_size, PART_MIN) : PART_DEFAULT;
  s->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
  s->cancel = o->cancel;
  *out = s;
  return 0;
}

void sl_objstore_close(sl_objstore *s) {
  if (!s) return;
  curl_easy_cleanup(s->curl);
  free(s);
}

const char *sl_objstore_bucket(const sl_objstore *s) { return s->bucket; }

/* ---- one request ------------------------------------------------------------------ */

typedef struct buf {
  uint8_t *p;
  size_t len, cap, max;
} buf;

typedef struct req {
  const char *method, *key, *query;  /* key NULL: the bucket */
  /* body: from fd [off, off+len) or from data */
  int in_fd;
  uint64_t in_off, in_len, in_pos;
  const void *data;
  const char *md5;                   /* base64 Content-MD5, or NULL */
  const char *crc_meta;              /* x-amz-meta-crc32c, or NULL */
  /* response body: into out_fd (a GET) or resp */
  int out_fd;
  uint64_t out_pos;
  uint32_t out_crc;
  int out_err;
  buf resp;
  /* answer */
  long status;
  char etag[128];
  char meta_crc[16];
  uint64_t length;
  bool has_length;
} req;

static size_t on_read(char *dst, size_t size, size_t n, void *arg) {
  req *r = arg;
  size_t want = SL_MIN(size * n, (size_t)(r->in_len - r->in_pos));
  if (!want) return 0;
  if (r->data) {
    memcpy(dst, (const uint8_t *)r->data + r->in_pos, want);
  } else {
    long got = sl_pread_full(r->in_fd, dst, want, r->in_off + r->in_pos);
    if (got <= 0) return CURL_READFUNC_ABORT;
    want = (size_t)got;
  }
  r->in_pos += want;
  return want;
}

static size_t on_write(char *src, size_t size, size_t n, void *arg) {
  req *r = arg;
  size_t len = size * n;
  /* An error answer's body always goes to resp, so that its code is read. */
  if (r->out_fd >= 0 && r->status < 300) {
    if (sl_pwrite_all(r->out_fd, src, len, r->out_pos)) {
      r->out_err = -errno;
      return 0;
    }
    r->out_crc = sl_crc32c(r->out_crc, src, len);
    r->out_pos += len;
    return len;
  }
  buf *b = &r->resp;
  if (b->max && b->len + len > b->max) return 0;
  if (b->len + len + 1 > b->cap) {
    size_t cap = SL_MAX(b->cap * 2, b->len + len + 1);
    uint8_t *p = realloc(b->p, cap);
    if (!p) return 0;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, src, len);
  b->len += len;
  b->p[b->len] = 0;
  return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  return atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

static bool cancelled(const sl_objstore *s) { return s->cancel && atomic_load(s->cancel); }

static void header_value(const char *line, size_t len, char *out, size_t olen) {
  const char *v = memchr(line, ':', len);
  if (!v) return;
  v++;
  const char *e = line + len;
  while (v < e && isspace((unsigned char)*v)) v++;
  while (e > v && isspace((unsigned char)e[-1])) e--;
  if (e > v && *v == '"' && e[-1] == '"' && e - v >= 2) v++, e--; /* ETag quotes */
  snprintf(out, olen, "%.*s", (int)(e - v), v);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg) {
  req *r = arg;
  size_t len = size * n;
  char v[128] = "";
  if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
    /* a new response (after 100 Continue or a redirect) */
    const char *sp = memchr(line, ' ', len);
    r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    r->has_length = false;
    r->etag[0] = r->meta_crc[0] = 0;
  } else if (len > 5 && strncasecmp(line, "ETag:", 5) == 0) {
    header_value(line, len, r->etag, sizeof r->etag);
  } else if (len > 18 && strncasecmp(line, "x-amz-meta-crc32c:", 18) == 0) {
    header_value(line, len, r->meta_crc, sizeof r->meta_crc);
  } else if (len > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
    header_value(line, len, v, sizeof v);
    r->length = strtoull(v, NULL, 10);
    r->has_length = true;
  }
  return len;
}

/* <Tag>text</Tag> of an XML answer. */
static bool xml_get(const char *xml, const char *tag, char *out, size_t len, const char **after) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *a = xml ? strstr(xml, open) : NULL;
  if (!a) return false;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (!b) return false;
  snprintf(out, len, "%.*s", (int)(b - a), a);
  if (after) *after = b + strlen(close);
  return true;
}

static int status_code(long status) {
  if (status == 404) return SL_ENOTFOUND;
  if (status == 401 || status == 403) return SL_EAUTH;
  if (status >= 500) return -EIO;
  return SL_EINVAL;
}

static void sleep_backoff(int attempt) {
  uint64_t ms = SL_MIN(100ull << SL_MIN(attempt, 6), 5000ull);
  ms = ms / 2 + (uint64_t)rand() % (ms / 2 + 1); /* jitter: half to all of it */
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int request(sl_objstore *s, req *r) {
  char url[2048], hdr_md5[80], hdr_crc[64], hdr_len[64];
  CURL *c = s->curl;
  int rc = -EIO;
  snprintf(url, sizeof url, "%s/%s%s%s%s%s", s->endpoint, s->bucket, r->key ? "/" : "", r->key ? r->key : "",
           r->query ? "?" : "", r->query ? r->query : "");
  bool body = r->data || r->in_fd >= 0;
  for (int attempt = 0;; attempt++) {
    struct curl_slist *h = NULL;
    curl_easy_reset(c);
    r->in_pos = 0;
    r->out_pos = 0;
    r->out_crc = 0;
    r->out_err = 0;
    r->resp.len = 0;
    r->status = 0;
    r->etag[0] = r->meta_crc[0] = 0;
    r->has_length = false;
    if (r->out_fd >= 0 && ftruncate(r->out_fd, 0)) return -errno;
    h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (r->md5) {
      snprintf(hdr_md5, sizeof hdr_md5, "Content-MD5: %s", r->md5);
      h = curl_slist_append(h, hdr_md5);
    }
    if (r->crc_meta) {
      snprintf(hdr_crc, sizeof hdr_crc, "x-amz-meta-crc32c: %s", r->crc_meta);
      h = curl_slist_append(h, hdr_crc);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    /* a stalled transfer: under 1 KB/s for the timeout */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)SL_MAX(1, s->timeout_ms / 1000));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (s->cancel) {
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)s->cancel);
    }
    if (!strcmp(r->method, "PUT")) {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(c, CURLOPT_READDATA, r);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(body ? r->in_len : 0));
    } else if (!strcmp(r->method, "POST")) {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)r->data : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? r->in_len : 0));
      h = curl_slist_append(h, "Content-Type: application/xml");
    } else if (!strcmp(r->method, "HEAD")) {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "GET")) {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (!strcmp(r->method, "PUT")) {
      snprintf(hdr_len, sizeof hdr_len, "Content-Length: %" PRIu64, body ? r->in_len : 0);
      h = curl_slist_append(h, hdr_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    if (r->out_err) {
      sl_diag_error("S3 %s %s/%s: writing what arrives: %s", r->method, s->bucket, r->key ? r->key : "",
                   sl_strerror(r->out_err));
      return r->out_err;
    }
    bool retry;
    if (cancelled(s)) return -ECANCELED;
    if (cc != CURLE_OK) {
      rc = -EIO;
      retry = true;
      if (attempt >= s->retries)
        sl_diag_error("S3 %s %s/%s at %s: %s", r->method, s->bucket, r->key ? r->key : "", s->endpoint,
                     curl_easy_strerror(cc));
    } else if (r->status >= 200 && r->status < 300) {
      return 0;
    } else {
      char code[128] = "", msg[256] = "";
      xml_get((const char *)r->resp.p, "Code", code, sizeof code, NULL);
      xml_get((const char *)r->resp.p, "Message", msg, sizeof msg, NULL);
      rc = status_code(r->status);
      retry = r->status >= 500;
      /* a 404 is an answer that callers name in their own words */
      if ((!retry || attempt >= s->retries) && r->status != 404)
        sl_diag_error("S3 %s %s/%s: HTTP %ld%s%s%s%s", r->method, s->bucket, r->key ? r->key : "", r->status,
                     *code ? " " : "", code, *msg ? ": " : "", msg);
    }
    if (!retry || attempt >= s->retries) return rc;
    sleep_backoff(attempt);
  }
}

static req req_init(const char *method, const char *key, const char *query) {
  return (req){.method = method, .key = key, .query = query, .in_fd = -1, .out_fd = -1};
}

static int check_key(const sl_objstore *s, const char *key) {
  if (sl_s3_key_valid(key)) return 0;
  sl_diag_error("S3 %s: key \"%s\" has characters other than [A-Za-z0-9._/-] or an empty segment", s->bucket,
               key ? key : "");
  return SL_EINVAL;
}

/* ---- PUT ---------------------------------------------------------------------------- */

static void md5_b64(const uint8_t *data, size_t len, char out[32]) {
  uint8_t d[16];
  unsigned dl = 0;
  EVP_Digest(data, len, d, &dl, EVP_md5(), NULL);
  EVP_EncodeBlock((unsigned char *)out, d, 16);
}

/* MD5 (base64) and CRC32C of fd [off, off+len). */
static int digest_range(int fd, uint64_t off, uint64_t len, char md5[32], uint32_t *crc) {
  enum { CHUNK = 1 << 20 };
  uint8_t *b = malloc(CHUNK), d[16];
  unsigned dl = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int rc = -ENOMEM;
  if (!b || !ctx) goto out;
  EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
  for (uint64_t done = 0; done < len;) {
    size_t want = (size_t)SL_MIN((uint64_t)CHUNK, len - done);
    long got = sl_pread_full(fd, b, want, off + done);
    if (got < 0) {
      rc = (int)got;
      goto out;
    }
    if ((size_t)got < want) {
      rc = SL_ETRUNCATED;
      goto out;
    }
    EVP_DigestUpdate(ctx, b, want);
    if (crc) *crc = sl_crc32c(*crc, b, want);
    done += want;
  }
  EVP_DigestFinal_ex(ctx, d, &dl);
  EVP_EncodeBlock((unsigned char *)md5, d, 16);
  rc = 0;
out:
  EVP_MD_CTX_free(ctx);
  free(b);
  return rc;
}

/* One PUT of fd [off, off+len) (or data[0, len)) to key?query, with its
 * Content-MD5; etag (may be NULL) gets the answer's ETag. */
static int put_body(sl_objstore *s, const char *key, const char *query, int fd, const void *data, uint64_t off,
                    uint64_t len, const char *crc_hex, char *etag, size_t etag_len) {
  char md5[32];
  int rc = 0;
  if (data) md5_b64(data, (size_t)len, md5);
  else if ((rc = digest_range(fd, off, len, md5, NULL))) return rc;
  req r = req_init("PUT", key, query);
  r.in_fd = fd;
  r.data = data;
  r.in_off = off;
  r.in_len = len;
  r.md5 = md5;
  r.crc_meta = crc_hex;
  rc = request(s, &r);
  free(r.resp.p);
  if (etag) snprintf(etag, etag_len, "%s", r.etag);
  return rc;
}

static int multipart_abort(sl_objstore *s, const char *key, const char *query) {
  req r = req_init("DELETE", key, query);
  const atomic_bool *cancel = s->cancel;
  s->cancel = NULL; /* a stop still aborts what it leaves half sent */
  int rc = request(s, &r);
  s->cancel = cancel;
  free(r.resp.p);
  if (rc == 0) sl_diag_warn("S3 %s/%s: the multipart upload was aborted", s->bucket, key);
  return rc;
}

static int put_multipart(sl_objstore *s, const char *key, int fd, uint64_t size, const char *crc_hex) {
  char upload_id[512], query[1024], *esc = NULL;
  size_t nparts = (size_t)((size + s->part_size - 1) / s->part_size);
  char (*etags)[128] = calloc(nparts, sizeof *etags);
  char *xml = NULL;
  bool started = false;
  int rc = -ENOMEM;
  if (!etags) goto out;
  req r = req_init("POST", key, "uploads=");
  r.crc_meta = crc_hex;
  rc = request(s, &r);
  if (rc == 0 && !xml_get((const char *)r.resp.p, "UploadId", upload_id, sizeof upload_id, NULL)) {
    sl_diag_error("S3 POST %s/%s?uploads: no UploadId in the answer", s->bucket, key);
    rc = SL_ECORRUPT;
  }
  free(r.resp.p);
  if (rc) goto out;
  started = true;
  if (!(esc = curl_easy_escape(s->curl, upload_id, 0))) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nparts; i++) {
    uint64_t off = i * s->part_size, len = SL_MIN(s->part_size, size - off);
    snprintf(query, sizeof query, "partNumber=%zu&uploadId=%s", i + 1, esc);
    if ((rc = put_body(s, key, query, fd, NULL, off, len, NULL, etags[i], sizeof etags[i]))) goto out;
    if (!etags[i][0]) {
      sl_diag_error("S3 PUT %s/%s part %zu: no ETag in the answer", s->bucket, key, i + 1);
      rc = SL_ECORRUPT;
      goto out;
    }
  }
  size_t cap = 128 + nparts * 200, n = 0;
  if (!(xml = malloc(cap))) {
    rc = -ENOMEM;
    goto out;
  }
  n += (size_t)snprintf(xml + n, cap - n, "<CompleteMultipartUpload>");
  for (size_t i = 0; i < nparts; i++)
    n += (size_t)snprintf(xml + n, cap - n, "<Part><PartNumber>%zu</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
                          etags[i]);
  n += (size_t)snprintf(xml + n, cap - n, "</CompleteMultipartUpload>");
  snprintf(query, sizeof query, "uploadId=%s", esc);
  req c = req_init("POST", key, query);
  c.data = xml;
  c.in_len = n;
  rc = request(s, &c);
  /* S3 may answer 200 and put the failure in the body */
  char code[128];
  if (rc == 0 && c.resp.p && xml_get((const char *)c.resp.p, "Code", code, sizeof code, NULL)) {
    sl_diag_error("S3 POST %s/%s?uploadId: completing the multipart upload failed: %s", s->bucket, key, code);
    rc = -EIO;
  }
  free(c.resp.p);
  if (rc == 0) started = false;
out:
  if (started) {
    snprintf(query, sizeof query, "uploadId=%s", esc ? esc : "");
    if (esc) multipart_abort(s, key, query);
  }
  curl_free(esc);
  free(xml);
  free(etags);
  return rc;
}

int sl_objstore_put_file(sl_objstore *s, const char *key, int fd, uint64_t size, uint32_t *crc_out) {
  char crc_hex[16], md5[32];
  uint32_t crc = 0;
  int rc = check_key(s, key);
  if (rc) return rc;
  /* a first pass for the checksum that goes in the headers (the page cache serves the second) */
  if ((rc = digest_range(fd, 0, size, md5, &crc))) {
    sl_diag_error("S3 PUT %s/%s: reading the file: %s", s->bucket, key, sl_strerror(rc));
    return rc;
  }
  snprintf(crc_hex, sizeof crc_hex, "%08" PRIx32, crc);
  if (size > s->part_size) rc = put_multipart(s, key, fd, size, crc_hex);
  else rc = put_body(s, key, NULL, fd, NULL, 0, size, crc_hex, NULL, 0);
  if (rc == 0 && crc_out) *crc_out = crc;
  return rc;
}

int sl_objstore_put_buf(sl_objstore *s, const char *key, const void *data, size_t len) {
  char crc_hex[16];
  int rc = check_key(s, key);
  if (rc) return rc;
  snprintf(crc_hex, sizeof crc_hex, "%08" PRIx32, sl_crc32c(0, data, len));
  return put_body(s, key, NULL, -1, data ? data : "", 0, len, crc_hex, NULL, 0);
}

/* ---- HEAD, GET, DELETE, LIST ---------------------------------------------------------------- */

/* A request on KEY without a body either way. */
static int bodiless(sl_objstore *s, const char *method, const char *key, req *r) {
  int rc = check_key(s, key);
  if (rc) return rc;
  *r = req_init(method, key, NULL);
  rc = request(s, r);
  free(r->resp.p);
  r->resp.p = NULL;
  return rc;
}

int sl_objstore_head(sl_objstore *s, const char *key, sl_obj_info *out) {
  req r;
  int rc = bodiless(s, "HEAD", key, &r);
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  out->size = r.length;
  if (r.meta_crc[0]) {
    char *end;
    out->crc32c = (uint32_t)strtoul(r.meta_crc, &end, 16);
    out->has_crc = !*end;
  }
  return 0;
}

int sl_objstore_get_file(sl_objstore *s, const char *key, int fd, uint64_t *size, uint32_t *crc) {
  int rc = check_key(s, key);
  if (rc) return rc;
  req r = req_init("GET", key, NULL);
  r.out_fd = fd;
  rc = request(s, &r);
  free(r.resp.p);
  if (rc) return rc;
  if (r.has_length && r.length != r.out_pos) {
    sl_diag_error("S3 GET %s/%s: %" PRIu64 " bytes arrived of %" PRIu64, s->bucket, key, r.out_pos, r.length);
    return SL_ECORRUPT;
  }
  if (size) *size = r.out_pos;
  if (crc) *crc = r.out_crc;
  return 0;
}

int sl_objstore_get_buf(sl_objstore *s, const char *key, size_t max, uint8_t **out, size_t *len) {
  int rc = check_key(s, key);
  if (rc) return rc;
  req r = req_init("GET", key, NULL);
  r.resp.max = max;
  rc = request(s, &r);
  if (rc == -EIO && max && r.resp.len >= max) rc = SL_ETOOBIG;
  if (rc) {
    free(r.resp.p);
    return rc;
  }
  if (!r.resp.p && !(r.resp.p = calloc(1, 1))) return -ENOMEM;
  *out = r.resp.p;
  *len = r.resp.len;
  return 0;
}

int sl_objstore_delete(sl_objstore *s, const char *key) {
  req r;
  return bodiless(s, "DELETE", key, &r);
}

void sl_objstore_free_list(char **keys, size_t n) {
  for (size_t i = 0; i < n; i++) free(keys[i]);
  free(keys);
}

int sl_objstore_list(sl_objstore *s, const char *prefix, char ***keys_out, size_t *n_out) {
  char query[2048], token[1024] = "", key[1024], trunc[16];
  char **keys = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  char *pesc = curl_easy_escape(s->curl, prefix ? prefix : "", 0);
  if (!pesc) return -ENOMEM;
  for (;;) {
    char *tesc = NULL;
    if (*token && !(tesc = curl_easy_escape(s->curl, token, 0))) {
      rc = -ENOMEM;
      break;
    }
    snprintf(query, sizeof query, "%s%s%slist-type=2&prefix=%s", tesc ? "continuation-token=" : "",
             tesc ? tesc : "", tesc ? "&" : "", pesc);
    curl_free(tesc);
    req r = req_init("GET", NULL, query);
    if ((rc = request(s, &r))) {
      free(r.resp.p);
      break;
    }
    const char *p = (const char *)r.resp.p;
    while (p && xml_get(p, "Key", key, sizeof key, &p)) {
      if (n == cap) {
        char **k = realloc(keys, (cap = cap ? cap * 2 : 64) * sizeof *k);
        if (!k) {
          rc = -ENOMEM;
          break;
        }
        keys = k;
      }
      if (!(keys[n] = strdup(key))) {
        rc = -ENOMEM;
        break;
      }
      n++;
    }
    bool more = xml_get((const char *)r.resp.p, "IsTruncated", trunc, sizeof trunc, NULL) && !strcmp(trunc, "true") &&
                xml_get((const char *)r.resp.p, "NextContinuationToken", token, sizeof token, NULL);
    free(r.resp.p);
    if (rc || !more) break;
  }
  curl_free(pesc);
  if (rc) {
    sl_objstore_free_list(keys, n);
    return rc;
  }
  *keys_out = keys;
  *n_out = n;
  return 0;
}

int sl_objstore_abort_uploads(sl_objstore *s, const char *prefix, size_t *n_out) {
  char query[2048], key[1024], id[512], abort_q[1024];
  size_t n = 0;
  char *pesc = curl_easy_escape(s->curl, prefix, 0);
  if (!pesc) return -ENOMEM;
  snprintf(query, sizeof query, "prefix=%s&uploads=", pesc);
  curl_free(pesc);
  req r = req_init("GET", NULL, query);
  int rc = request(s, &r);
  const char *p = (const char *)r.resp.p, *up;
  while (rc == 0 && p && (up = strstr(p, "<Upload>"))) {
    if (!xml_get(up, "Key", key, sizeof key, NULL) || !xml_get(up, "UploadId", id, sizeof id, &p)) break;
    char *esc = curl_easy_escape(s->curl, id, 0);
    if (!esc) {
      rc = -ENOMEM;
      break;
    }
    snprintf(abort_q, sizeof abort_q, "uploadId=%s", esc);
    curl_free(esc);
    if (sl_s3_key_valid(key) && (rc = multipart_abort(s, key, abort_q)) == 0) n++;
  }
  free(r.resp.p);
  if (n_out) *n_out = n;
  return rc;
}
