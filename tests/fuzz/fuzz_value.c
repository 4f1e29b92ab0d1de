/*
 * fuzz_value: one property value as the store decodes it (store/value.c):
 * the first byte selects the shape, the rest is its bytes.
 *   even: an LMDB property value (sl__value_decode), as a damaged data.mdb
 *         or a loaded dump hands it to a read;
 *   odd:  a packed Shiplog__Value (sl__value_from_pb + sl__value_check), as
 *         a log record or a replication batch hands it to apply.
 * A value either decoder accepts must survive LMDB encode -> decode and
 * protobuf encoding unchanged, and order equal to itself
 * (sl_value_order, sl_value_compare).
 */
#include <errno.h>

#include "fuzz.h"

#include "store_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  sl_arena a;
  sl_value v, w;
  int rc;
  sl_arena_init(&a, NULL);
  if (data[0] & 1) {
    ProtobufCAllocator al;
    sl__arena_pb_allocator(&a, &al);
    Shiplog__Value *pb = shiplog__value__unpack(&al, size - 1, data + 1);
    rc = pb ? sl__value_from_pb(&a, pb, &v) : SL_EINVAL;
    if (rc == 0 && (v.kind == SL_NULL || sl__value_check(&v, NULL, 0))) rc = SL_EINVAL;
  } else {
    rc = sl__value_decode(data + 1, size - 1, &a, &v);
  }
  if (rc == 0) {
    size_t n = sl__value_encoded_size(&v);
    uint8_t *buf = malloc(n);
    if (!buf) abort();
    sl__value_encode(&v, buf);
    if (sl__value_decode(buf, n, &a, &w) || !sl_value_equal(&v, &w)) abort();
    free(buf);
    int cmp, eq;
    if (sl_value_order(&v, &w) != 0) abort();
    if (sl_value_compare(&v, &w, &cmp, &eq) && cmp != 0) abort();
    Shiplog__Value *pb;
    if (sl__value_to_pb(&a, &v, &pb) == -ENOMEM) abort();
  }
  sl_arena_free(&a);
  return 0;
}
