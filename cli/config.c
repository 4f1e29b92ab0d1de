/*
 * Global options and configuration files (spec/cli.md, "Object storage,
 * operations, failover"): `--log-format text|json` and `--config FILE`,
 * taken by every subcommand (they matter for the long-running ones, ship
 * and receive).
 *
 * THE FILE is INI as libinih reads it (Debian's libinih-dev): one
 * `key = value` per line, keys are the subcommand's long option names
 * without the dashes, `#` or `;` start a comment (at the start of a line,
 * or after whitespace), surrounding whitespace is dropped. A flag that
 * takes no value is written `key = true|false` (yes/no, on/off, 1/0) or
 * as the bare key (true). No sections: one file per command.
 *
 *     # /etc/shiplog/receive.conf
 *     listen = 0.0.0.0:7400
 *     data = /var/lib/shiplog/receiver
 *     metrics = 127.0.0.1:9400
 *     insecure = true
 *     log-format = json
 *
 * HOW IT APPLIES. cli_global_options() runs before the subcommand: it
 * removes --log-format and --config from the arguments, parses FILE and
 * puts one argument per key in front of the remaining arguments, so the
 * file's keys count as flags given first and the real flags, coming
 * later, win (getopt's last-one-wins). cli_getopt() hands those leading
 * arguments out itself (cli__config_getopt), matching keys exactly
 * against the subcommand's option table: an unknown key, a key without
 * its value, or a flag whose value is not a boolean is refused as
 * "FILE:LINE: ...". The file's remaining keys are checked by the
 * subcommand like flags, and a refusal then names FILE:LINE too
 * (cli__config_where): while the subcommand handles a key from the file,
 * and afterwards for a message about an option ("--NAME...") whose value
 * came from the file and not from the command line.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "sl_base.h"

typedef struct cfg_item {
  char *key, *value; /* value NULL: a bare key */
  int line;
} cfg_item;

/* The configuration of this process's one subcommand. */
static struct {
  char *file;
  cfg_item *items;
  size_t n, cap;
  int first;             /* argv[first .. first + n) stand for the items */
  int current;           /* line of the option cli_getopt just returned; 0: none */
  uint64_t seen;         /* option-table indices given on the command line */
  const struct option *opts; /* the subcommand's option table */
  char **rest, **argv;   /* the argument arrays made here: live until exit */
  char error[256];       /* the first refusal while parsing */
  int error_line;
  unsigned lines;        /* newlines read so far (the reader counts them) */
  bool last_newline;     /* the last piece read ended a line */
} cfg;

/* ---- parsing ------------------------------------------------------------------ */

/* fgets for libinih that counts lines, so that the handler knows its line
 * (inih passes no line number to handlers in Debian's build). */
static char *count_lines(char *str, int num, void *stream) {
  char *s = fgets(str, num, stream);
  if (!s) return NULL;
  size_t n = strlen(s);
  cfg.last_newline = n > 0 && s[n - 1] == '\n';
  if (cfg.last_newline) cfg.lines++;
  return s;
}

static int current_line(void) { return (int)cfg.lines + (cfg.last_newline ? 0 : 1); }

static int on_key(void *user, const char *section, const char *name, const char *value) {
  (void)user;
  int line = current_line();
  if (section && section[0]) {
    snprintf(cfg.error, sizeof cfg.error, "section [%s]: sections are not used (one file per command)",
             section);
    cfg.error_line = line;
    return 0;
  }
  if (cfg.n == cfg.cap) {
    size_t cap = cfg.cap ? 2 * cfg.cap : 16;
    cfg_item *p = realloc(cfg.items, cap * sizeof *p);
    if (!p) return 0;
    cfg.items = p;
    cfg.cap = cap;
  }
  cfg_item *it = &cfg.items[cfg.n];
  it->key = strdup(name);
  it->value = value ? strdup(value) : NULL;
  it->line = line;
  if (!it->key || (value && !it->value)) {
    snprintf(cfg.error, sizeof cfg.error, "out of memory");
    cfg.error_line = line;
    return 0;
  }
  cfg.n++;
  return 1;
}

static int parse_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    sl_diag_error("%s: cannot read the configuration file: %s", path, strerror(errno));
    return CLI_FAIL;
  }
  /* libinih's knobs (runtime variables in Debian's build): one line per
   * key, any length, stop at the first error, bare keys allowed. */
  ini_allow_multiline = false;
  ini_allow_no_value = true;
  ini_stop_on_first_error = true;
  ini_use_stack = false;
  ini_allow_realloc = true;
  ini_max_line = 1 << 16;
  ini_inline_comment_prefixes = (char *)";#";
  int rc = ini_parse_stream(count_lines, f, on_key, NULL);
  fclose(f);
  if (rc == 0) return CLI_OK;
  if (rc < 0) {
    sl_diag_error("%s: cannot parse the configuration file (%s)", path, rc == -2 ? "out of memory" : "read error");
    return CLI_FAIL;
  }
  if (cfg.error[0])
    sl_diag_error("%s:%d: %s", path, cfg.error_line, cfg.error);
  else
    sl_diag_error("%s:%d: not a 'key = value' line", path, rc);
  return CLI_USAGE;
}

/* ---- global options ------------------------------------------------------------- */

static int set_log_format(const char *where, const char *v) {
  if (!strcmp(v, "text")) sl_diag_set_format(SL_DIAG_TEXT);
  else if (!strcmp(v, "json")) sl_diag_set_format(SL_DIAG_JSON);
  else {
    sl_diag_error("%s: --log-format: '%s' is not text or json", where, v);
    return CLI_USAGE;
  }
  return CLI_OK;
}

/* Take "--NAME VALUE" or "--NAME=VALUE" at argv[*i] (the value in *value);
 * true if argv[*i] is that option. */
static bool take(int argc, char **argv, int *i, const char *name, const char **value, bool *missing) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0) return false;
  if (a[2 + n] == '=') {
    *value = a + 3 + n;
    return true;
  }
  if (a[2 + n] != 0) return false;
  if (*i + 1 >= argc) {
    *missing = true;
    return true;
  }
  *value = argv[++*i];
  return true;
}

int cli_global_options(const char *cmd, int *argc, char ***argv) {
  int n = *argc;
  char **in = *argv;
  const char *log_format = NULL, *config = NULL;
  char **rest = cfg.rest = calloc((size_t)n + 1, sizeof *rest);
  int nrest = 0;
  if (!rest) return CLI_FAIL;
  rest[nrest++] = in[0];
  bool options = true;
  for (int i = 1; i < n; i++) {
    const char *v = NULL;
    bool missing = false;
    if (options && !strcmp(in[i], "--")) options = false;
    if (options && take(n, in, &i, "log-format", &v, &missing)) {
      if (missing) return cli_usage(cmd, "--log-format needs text or json");
      log_format = v;
    } else if (options && take(n, in, &i, "config", &v, &missing)) {
      if (missing) return cli_usage(cmd, "--config needs a FILE");
      if (config) return cli_usage(cmd, "--config given twice");
      config = v;
    } else {
      rest[nrest++] = in[i];
    }
  }
  if (log_format && set_log_format(cmd, log_format)) return CLI_USAGE;
  if (!config) {
    *argc = nrest;
    *argv = rest;
    return CLI_OK;
  }

  int rc = parse_file(config);
  if (rc) return rc;
  if (!(cfg.file = strdup(config))) return CLI_FAIL;
  /* log-format is global: the file's applies unless the command line gave one. */
  size_t keep = 0;
  for (size_t i = 0; i < cfg.n; i++) {
    cfg_item *it = &cfg.items[i];
    if (strcmp(it->key, "log-format") != 0) {
      cfg.items[keep++] = *it;
      continue;
    }
    if (!log_format) {
      char where[512];
      snprintf(where, sizeof where, "%s:%d", config, it->line);
      if (set_log_format(where, it->value ? it->value : "")) return CLI_USAGE;
    }
    free(it->key);
    free(it->value);
  }
  cfg.n = keep;
  char **out = cfg.argv = calloc((size_t)nrest + cfg.n + 1, sizeof *out);
  if (!out) return CLI_FAIL;
  out[0] = rest[0];
  cfg.first = 1;
  for (size_t i = 0; i < cfg.n; i++) out[1 + i] = cfg.items[i].key; /* placeholders: never parsed by getopt */
  memcpy(out + 1 + cfg.n, rest + 1, (size_t)(nrest - 1) * sizeof *out);
  *argc = nrest + (int)cfg.n;
  *argv = out;
  return CLI_OK;
}

/* ---- the subcommand's option loop ------------------------------------------------ */

static int find_option(const struct option *opts, const char *key) {
  for (int i = 0; opts[i].name; i++)
    if (!strcmp(opts[i].name, key) && strcmp(key, "help") != 0) return i;
  return -1;
}

static int parse_bool(const char *v) {
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  if (!v) return 1;
  for (size_t i = 0; i < SL_ARRAY_LEN(yes); i++) {
    if (!strcasecmp(v, yes[i])) return 1;
    if (!strcasecmp(v, no[i])) return 0;
  }
  return -1;
}

bool cli__config_getopt(const struct option *opts, int *c) {
  cfg.current = 0;
  cfg.opts = opts;
  while (cfg.n && optind >= cfg.first && (size_t)(optind - cfg.first) < cfg.n) {
    const cfg_item *it = &cfg.items[optind - cfg.first];
    optind++;
    int o = find_option(opts, it->key);
    *c = '?';
    if (o < 0) {
      sl_diag_error("%s:%d: unknown key '%s' (no option --%s here)", cfg.file, it->line, it->key, it->key);
      return true;
    }
    if (opts[o].has_arg == no_argument) {
      int b = parse_bool(it->value);
      if (b < 0) {
        sl_diag_error("%s:%d: %s: '%s' is not true or false", cfg.file, it->line, it->key, it->value);
        return true;
      }
      if (b == 0) continue;
      optarg = NULL;
    } else {
      if (!it->value || !it->value[0]) {
        sl_diag_error("%s:%d: %s needs a value", cfg.file, it->line, it->key);
        return true;
      }
      optarg = it->value;
    }
    cfg.current = it->line;
    if (opts[o].flag) {
      *opts[o].flag = opts[o].val;
      *c = 0;
    } else {
      *c = opts[o].val;
    }
    return true;
  }
  return false;
}

void cli__config_seen(const struct option *opts, int c, int longindex) {
  cfg.current = 0;
  if (c == -1 || c == '?' || longindex < 0 || longindex >= 64 || !opts[longindex].name) return;
  cfg.seen |= 1ull << longindex;
}

void cli__config_where(const char *msg, char *out, size_t len) {
  out[0] = 0;
  if (!cfg.file) return;
  int line = cfg.current;
  if (!line && cfg.opts && msg && !strncmp(msg, "--", 2)) {
    char name[64];
    size_t n = 0;
    for (const char *p = msg + 2; n + 1 < sizeof name && (isalnum((unsigned char)*p) || *p == '-'); p++)
      name[n++] = *p;
    name[n] = 0;
    int o = find_option(cfg.opts, name);
    if (o >= 0 && o < 64 && !(cfg.seen >> o & 1))
      for (size_t i = 0; i < cfg.n; i++)
        if (!strcmp(cfg.items[i].key, name)) line = cfg.items[i].line;
  }
  if (line) snprintf(out, len, "%s:%d: ", cfg.file, line);
}

bool cli__config_has(const char *key) {
  for (size_t i = 0; i < cfg.n; i++)
    if (!strcmp(cfg.items[i].key, key)) return true;
  return false;
}
