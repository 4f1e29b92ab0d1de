/*
 * `shiplog passwd FILE USER [--role reader|editor|admin]`: add a user to a
 * Bolt users file or change a user's password (spec/bolt.md). The password
 * is read from the terminal without echo (asked twice), or as one line of
 * standard input when that is no terminal (scripts). The file's format and
 * hashing are bolt/auth.c's (bolt.h, USERS FILE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bolt.h"
#include "cli.h"

#define PASSWORD_MAX 1024

static const char passwd_help[] =
    "Usage: shiplog passwd FILE USER [--role reader|editor|admin]\n"
    "\n"
    "Add USER to the Bolt users file FILE, or change USER's password. The\n"
    "password is read from the terminal (without echo, twice), or as one line\n"
    "of standard input when it is not a terminal. FILE is created with mode\n"
    "0600; an existing FILE that group or others may read is refused. Passwords\n"
    "are kept as salted scrypt hashes.\n"
    "\n"
    "  --role ROLE  reader (reads), editor (reads and writes data) or admin (also\n"
    "               schema); a new user is a reader unless given, a changed one\n"
    "               keeps its role\n";

/* One line from f into buf (newline removed): its length, or -1 at EOF
 * or when longer than the buffer. */
static long read_line(FILE *f, char *buf, size_t size) {
  if (!fgets(buf, (int)size, f)) return -1;
  size_t n = strlen(buf);
  if (n && buf[n - 1] == '\n') buf[--n] = 0;
  else if (n == size - 1) return -1;
  if (n && buf[n - 1] == '\r') buf[--n] = 0;
  return (long)n;
}

/* Prompt on the terminal with echo off. */
static long ask(FILE *tty, const char *prompt, char *buf, size_t size) {
  struct termios old, quiet;
  int fd = fileno(tty);
  fputs(prompt, stderr);
  fflush(stderr);
  bool restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  long n = read_line(tty, buf, size);
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  fputc('\n', stderr);
  return n;
}

int cmd_passwd(int argc, char **argv) {
  static const struct option opts[] = {{"role", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0}};
  sl_bolt_role role = SL_BOLT_ROLE_NONE;
  char **pos;
  int c;
  while ((c = cli_getopt(argc, argv, opts)) != -1) {
    switch (c) {
    case 'h': return cli_help(passwd_help);
    case 'r':
      if ((role = sl_bolt_role_parse(optarg)) == SL_BOLT_ROLE_NONE)
        return cli_usage("passwd", "--role must be reader, editor or admin, not '%s'", optarg);
      break;
    default: return cli_usage("passwd", NULL);
    }
  }
  if (cli_positional(argc, argv, "passwd", 2, (const char *[]){"FILE", "USER"}, &pos)) return CLI_USAGE;
  char pw[PASSWORD_MAX + 2], again[PASSWORD_MAX + 2];
  long n;
  int status = CLI_FAIL;
  if (isatty(STDIN_FILENO)) {
    n = ask(stdin, "New password: ", pw, sizeof pw);
    if (n >= 0 && (ask(stdin, "Again: ", again, sizeof again) != n || memcmp(pw, again, (size_t)n))) {
      sl_diag_error("the passwords differ; nothing changed");
      goto out;
    }
  } else {
    n = read_line(stdin, pw, sizeof pw);
  }
  if (n < 0) {
    sl_diag_error("no password read (one line of at most %d bytes)", PASSWORD_MAX);
    goto out;
  }
  if (n == 0) {
    sl_diag_error("the password is empty; nothing changed");
    goto out;
  }
  bool added;
  if (sl_bolt_passwd(pos[0], pos[1], pw, (size_t)n, role, &added)) goto out; /* it said why */
  fprintf(stderr, "%s user '%s' in %s\n", added ? "added" : "changed", pos[1], pos[0]);
  status = CLI_OK;
out:
  memset(pw, 0, sizeof pw);
  memset(again, 0, sizeof again);
  return status;
}
