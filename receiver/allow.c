/*
 * allow.c: the receiver's allow list (`receive --allow FILE`, README
 * "Security"), which binds each stream to the certificate identities that
 * may write it.
 *
 * FILE FORMAT: one rule a line, `STREAM IDENTITY [IDENTITY...]`, fields
 * separated by spaces or tabs; `#` starts a comment (whole line or after
 * the fields); blank lines are ignored. STREAM is a stream name
 * ([A-Za-z0-9_.-]{1,64}); an IDENTITY is a certificate's subject CN or one
 * of its DNS subjectAltNames, compared exactly (case-sensitive, no
 * wildcards). A stream named on several lines takes the union. A shipper
 * may open a stream only when one of its certificate's identities is listed
 * for that stream; a stream not in the file is nobody's. Bad lines refuse
 * the whole file ("FILE:LINE: reason"): a half-read allow list would let
 * the wrong primary in or keep the right one out.
 *
 * The file is read once at start; the rules are immutable afterwards, so
 * connection threads read them without a lock.
 */
#include "receiver_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_base.h"
#include "sl_status.h"

#define LINE_MAX_BYTES 4096

typedef struct rule {
  char stream[65];
  char **ids;
  size_t nids;
} rule;

struct sl__allow {
  rule *rules;
  size_t n;
};

void sl__allow_free(sl__allow *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n; i++) {
    for (size_t j = 0; j < a->rules[i].nids; j++) free(a->rules[i].ids[j]);
    free(a->rules[i].ids);
  }
  free(a->rules);
  free(a);
}

static rule *rule_for(sl__allow *a, const char *stream) {
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->rules[i].stream, stream) == 0) return &a->rules[i];
  rule *r = realloc(a->rules, (a->n + 1) * sizeof *r);
  if (!r) return NULL;
  a->rules = r;
  r = &a->rules[a->n++];
  memset(r, 0, sizeof *r);
  snprintf(r->stream, sizeof r->stream, "%s", stream);
  return r;
}

static int rule_add(rule *r, const char *id) {
  for (size_t i = 0; i < r->nids; i++)
    if (strcmp(r->ids[i], id) == 0) return 0;
  char **ids = realloc(r->ids, (r->nids + 1) * sizeof *ids);
  if (!ids) return -ENOMEM;
  r->ids = ids;
  if (!(r->ids[r->nids] = strdup(id))) return -ENOMEM;
  r->nids++;
  return 0;
}

/* One line (comment already cut): 0, SL_EINVAL with why, or -ENOMEM. */
static int parse_line(sl__allow *a, char *line, char *why, size_t whylen) {
  const char *sep = " \t\r";
  char *save;
  char *stream = strtok_r(line, sep, &save);
  if (!stream) return 0;
  if (!sl_stream_name_valid(stream)) {
    snprintf(why, whylen, "'%.80s' is not a stream name ([A-Za-z0-9_.-]{1,64})", stream);
    return SL_EINVAL;
  }
  char *id = strtok_r(NULL, sep, &save);
  if (!id) {
    snprintf(why, whylen, "stream %s names no certificate identity", stream);
    return SL_EINVAL;
  }
  rule *r = rule_for(a, stream);
  if (!r) return -ENOMEM;
  for (; id; id = strtok_r(NULL, sep, &save)) {
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
      if (*p < 0x20 || *p == 0x7f) {
        snprintf(why, whylen, "identity of stream %s holds a control character", stream);
        return SL_EINVAL;
      }
    }
    int rc = rule_add(r, id);
    if (rc) return rc;
  }
  return 0;
}

int sl__allow_load(const char *path, sl__allow **out) {
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f) {
    int rc = -errno;
    sl_diag_error("allow list %s: %s", path, sl_strerror(rc));
    return rc;
  }
  sl__allow *a = calloc(1, sizeof *a);
  char line[LINE_MAX_BYTES], why[200];
  unsigned long lineno = 0;
  int rc = a ? 0 : -ENOMEM;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
      snprintf(why, sizeof why, "line longer than %d bytes", LINE_MAX_BYTES - 2);
      rc = SL_EINVAL;
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    line[strcspn(line, "\n")] = 0;
    rc = parse_line(a, line, why, sizeof why);
  }
  if (rc == 0 && ferror(f)) {
    rc = -EIO;
    snprintf(why, sizeof why, "read error");
  }
  fclose(f);
  if (rc == SL_EINVAL || rc == -EIO) sl_diag_error("%s:%lu: %s", path, lineno, why);
  else if (rc) sl_diag_error("allow list %s: %s", path, sl_strerror(rc));
  if (rc) {
    sl__allow_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

bool sl__allow_check(const sl__allow *a, const char *stream, const char *const *ids, size_t nids) {
  for (size_t i = 0; i < a->n; i++) {
    const rule *r = &a->rules[i];
    if (strcmp(r->stream, stream) != 0) continue;
    for (size_t j = 0; j < r->nids; j++)
      for (size_t k = 0; k < nids; k++)
        if (strcmp(r->ids[j], ids[k]) == 0) return true;
    return false;
  }
  return false;
}

size_t sl__allow_count(const sl__allow *a) { return a ? a->n : 0; }
