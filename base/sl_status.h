/*
 * What the shipper, the receiver and the CLI share about a stream that is
 * not a wire concern (codec/ has the bytes on the wire): the rule for a
 * stream's name, and the status files through which a running shipper or
 * receiver tells `shiplog status` (another process) where it is. In base/
 * so that all three use them without including each other.
 *
 * THREADS: all pure or on their own files; safe from any thread.
 */
#ifndef SL_STATUS_H
#define SL_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stream names: [A-Za-z0-9_.-]{1,64}, not "." or "..": a stream's name
 * names its directories and files. */
bool sl_stream_name_valid(const char *name);

/* ---- status files ---------------------------------------------------------- */
/* Status files are "key=value" lines, replaced atomically (write PATH.tmp,
 * rename; no fsync: they are reports, not state) so a reader in another
 * process sees an old or a new version, never a mix. */
int sl_status_write(const char *path, const char *text);
/* Read PATH whole into buf (NUL-terminated). */
int sl_status_load(const char *path, char *buf, size_t len);
/* Value of key in a loaded status text; false if absent. */
bool sl_status_get(const char *text, const char *key, char *out, size_t outlen);
uint64_t sl_status_get_u64(const char *text, const char *key);

#endif
