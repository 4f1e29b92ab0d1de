/*
 * The security flags that `ship` and `receive` share (spec/cli.md,
 * "Security flags"; README "Security"): TLS 1.3 with --tls-cert, --tls-key
 * and --tls-ca, or plain TCP with --insecure. Neither is the default: a
 * command given neither is a usage error that says which to pass, so that
 * plain TCP is always a written choice, and --insecure is repeated as a
 * warning on stderr each time it is used.
 *
 * At-rest encryption keys (--key-file, or SHIPLOG_KEY_FILE) are loaded
 * here for every command that reads or writes archives or dumps.
 */
#include <string.h>

#include "cli.h"
#include "crypt.h"
#include "cmd_repl.h"
#include "sl_base.h"

int cli_tls_check(const char *cmd, const cli_tls *t) {
  int given = !!t->cert + !!t->key + !!t->ca;
  if (t->insecure && (given || t->server_name || t->allow))
    return cli_usage(cmd, "--insecure (plain TCP) and --tls-*%s exclude each other",
                     t->allow ? " / --allow" : "");
  if (t->insecure) {
    sl_diag_warn("--insecure: plain TCP without encryption or authentication; anyone on the "
                "network path can read the stream and %s",
                strcmp(cmd, "receive") == 0 ? "write any stream" : "pose as the receiver");
    return CLI_OK;
  }
  if (given == 0)
    return cli_usage(cmd, "pass --tls-cert FILE --tls-key FILE --tls-ca FILE for TLS, or --insecure "
                          "for plain TCP without authentication");
  if (given < 3)
    return cli_usage(cmd, "--tls-cert, --tls-key and --tls-ca go together (missing:%s%s%s)",
                     t->cert ? "" : " --tls-cert", t->key ? "" : " --tls-key", t->ca ? "" : " --tls-ca");
  return CLI_OK;
}

int cli_keyring(const char *path, sl_keyring **out) {
  return sl_keyring_load_default(path, out) ? CLI_FAIL : CLI_OK;
}
