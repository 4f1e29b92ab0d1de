#!/usr/bin/env bash
# Turn an LDBC SNB "raw" data set (composite-merged-fk layout, as in
# data/ldbc-snb-example-graph) into a shiplog mutation file (spec/mutations.md):
# the graph's whole history replayed in time order, one transaction per line.
#
# Usage: scripts/ldbc-to-mutations.sh DATASET_DIR > ldbc.jsonl
#
# What becomes what
#   - Every CSV under DATASET_DIR whose name is a kind (Person.csv, Place.csv)
#     holds nodes; A_verb_B.csv holds relationships of type VERB in upper
#     snake case (Person_hasInterest_Tag -> HAS_INTEREST), from A to B.
#   - Node ids: one id space per LDBC kind, mapped to KIND * 10^12 + LDBC id
#     with KIND 1 Place, 2 Organisation, 3 TagClass, 4 Tag, 5 Person, 6 Forum,
#     7 Post, 8 Comment (Person 3 is node 5000000000003). The LDBC id is kept
#     as the int property "id".
#   - Labels: the kind (Place and Organisation also get their type: City,
#     Country, Continent, University, Company).
#   - Properties: every other column; id, length, classYear and workFrom as
#     ints, Person.language and Person.email (';'-separated) as string
#     arrays, dates and everything else as strings; empty fields are absent.
#   - Foreign-key columns become relationships: isPartOf -> IS_PART_OF,
#     place/city/country -> IS_LOCATED_IN, hasType -> HAS_TYPE, isSubclassOf
#     -> IS_SUBCLASS_OF, moderator -> HAS_MODERATOR, creator -> HAS_CREATOR,
#     replyOfPost/replyOfComment -> REPLY_OF, and Post's Forum.id ->
#     CONTAINER_OF (Forum to Post). Relationship ids are 1, 2, ... in order of
#     creation.
#
# Time
#   - Each node is created in its own transaction with "ts" = its
#     creationDate, with its foreign-key relationships when their targets
#     already exist; each relationship from an edge file is its own
#     transaction. Static kinds (no creationDate) come first, at the earliest
#     time found in the data set.
#   - A relationship is never created before both of its ends exist: its time
#     is the latest of its own creationDate and theirs (the example graph has
#     a few edges dated before their endpoints).
#   - Deletions come as later transactions at their deletionDate: every
#     explicitlyDeleted entity, and every entity whose deletionDate lies before
#     the data set's horizon (its latest deletionDate, which marks "never
#     deleted"): those are LDBC's cascading deletions. Nodes are deleted with
#     "detach" (their relationships go with them); a relationship whose end
#     is deleted first is not deleted again.
#   - Lines are sorted by time, so "ts" never goes backwards; at equal times
#     node creations come before relationship creations, relationship
#     deletions, then node deletions.
#
# Needs bash, coreutils (sort, cut, find) and any awk (mawk is enough).
set -euo pipefail

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
  echo "usage: $0 DATASET_DIR > FILE.jsonl" >&2
  exit 2
fi
dir=$1
if [[ ! -d $dir ]]; then
  echo "ldbc-to-mutations: $dir: no such directory" >&2
  exit 1
fi
mapfile -t files < <(find "$dir" -name '*.csv' -type f | LC_ALL=C sort)
if ((${#files[@]} == 0)); then
  echo "ldbc-to-mutations: $dir: no .csv files" >&2
  exit 1
fi

convert() {
  awk -F'|' '
function warn(msg) { printf "ldbc-to-mutations: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; warned++ }

function jstr(s) {
  gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\r/, "\\r", s)
  return "\"" s "\""
}

# ISO-8601 with zone -> microseconds since the epoch (days_from_civil).
function to_us(s,   y, m, d, hh, mi, ss, rest, frac, off, sign, era, yoe, doy, doe, days) {
  if (s !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/) {
    warn("bad time \"" s "\""); exit_code = 1; return 0
  }
  y = substr(s, 1, 4) + 0; m = substr(s, 6, 2) + 0; d = substr(s, 9, 2) + 0
  hh = substr(s, 12, 2) + 0; mi = substr(s, 15, 2) + 0; ss = substr(s, 18, 2) + 0
  rest = substr(s, 20); frac = 0; off = 0
  if (substr(rest, 1, 1) == ".") {
    match(rest, /^\.[0-9]+/)
    frac = substr(substr(rest, 2, RLENGTH - 1) "000000", 1, 6) + 0
    rest = substr(rest, RLENGTH + 1)
  }
  if (rest ~ /^[+-][0-9][0-9]:?[0-9][0-9]$/) {
    sign = substr(rest, 1, 1) == "-" ? -1 : 1
    sub(/:/, "", rest)
    off = sign * (substr(rest, 2, 2) * 3600 + substr(rest, 4, 2) * 60)
  } else if (rest != "Z") {
    warn("time without zone \"" s "\""); exit_code = 1
  }
  if (m <= 2) y--
  era = int(y / 400); yoe = y - era * 400
  doy = int((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1
  doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
  days = era * 146097 + doe - 719468
  return (days * 86400 + hh * 3600 + mi * 60 + ss - off) * 1000000 + frac
}

function node_id(kind, id,   k) {
  k = kindnum[kind]
  if (k == "") { warn("unknown kind " kind); exit_code = 1; return "" }
  if (id !~ /^[0-9]+$/ || length(id) > 12) { warn("bad " kind " id \"" id "\""); exit_code = 1; return "" }
  return k substr("000000000000", 1, 12 - length(id)) id
}

function upper_snake(verb,   out, i, c) {
  out = ""
  for (i = 1; i <= length(verb); i++) {
    c = substr(verb, i, 1)
    if (c ~ /[A-Z]/ && i > 1) out = out "_"
    out = out toupper(c)
  }
  return out
}

function prop(key, val, col,   n, parts, p, out) {
  if (val == "") return ""
  if (col in intcol) {
    if (val !~ /^-?[0-9]+$/) { warn(col " is not an integer: \"" val "\""); exit_code = 1; return "" }
    return jstr(key) ":" val
  }
  if ((kind "." col) in listcol) {
    n = split(val, parts, ";"); out = ""
    for (p = 1; p <= n; p++) out = out (p > 1 ? "," : "") jstr(parts[p])
    return jstr(key) ":[" out "]"
  }
  return jstr(key) ":" jstr(val)
}

function add_rel(type, start, end, props, ts, tss, owner, del, dels, explicit) {
  R++
  r_type[R] = type; r_start[R] = start; r_end[R] = end; r_props[R] = props
  r_ts[R] = ts; r_tss[R] = tss; r_owner[R] = owner
  r_del[R] = del; r_dels[R] = dels; r_explicit[R] = explicit
}

# Files are kinds: col2kind maps an edge file endpoint kind to its id space.
BEGIN {
  kindnum["Place"] = 1; kindnum["Organisation"] = 2; kindnum["TagClass"] = 3; kindnum["Tag"] = 4
  kindnum["Person"] = 5; kindnum["Forum"] = 6; kindnum["Post"] = 7; kindnum["Comment"] = 8
  space["City"] = "Place"; space["Country"] = "Place"; space["Continent"] = "Place"
  space["University"] = "Organisation"; space["Company"] = "Organisation"
  for (k in kindnum) space[k] = k
  intcol["id"]; intcol["length"]; intcol["classYear"]; intcol["workFrom"]
  listcol["Person.language"]; listcol["Person.email"]
  # kind.column -> TYPE|target kind|direction (out: node -> target)
  fk["Place.isPartOf"] = "IS_PART_OF|Place|out"
  fk["Organisation.place"] = "IS_LOCATED_IN|Place|out"
  fk["Tag.hasType"] = "HAS_TYPE|TagClass|out"
  fk["TagClass.isSubclassOf"] = "IS_SUBCLASS_OF|TagClass|out"
  fk["Person.city"] = "IS_LOCATED_IN|Place|out"
  fk["Forum.moderator"] = "HAS_MODERATOR|Person|out"
  fk["Post.creator"] = "HAS_CREATOR|Person|out"
  fk["Post.Forum.id"] = "CONTAINER_OF|Forum|in"
  fk["Post.country"] = "IS_LOCATED_IN|Place|out"
  fk["Comment.creator"] = "HAS_CREATOR|Person|out"
  fk["Comment.country"] = "IS_LOCATED_IN|Place|out"
  fk["Comment.replyOfPost"] = "REPLY_OF|Post|out"
  fk["Comment.replyOfComment"] = "REPLY_OF|Comment|out"
  skipcol["deletionDate"]; skipcol["explicitlyDeleted"]
}

FNR == 1 {
  base = FILENAME; sub(/.*\//, "", base); sub(/\.csv$/, "", base)
  ncol = NF; delete colname; delete colidx
  for (i = 1; i <= NF; i++) { colname[i] = $i; colidx[$i] = i }
  nparts = split(base, fparts, "_")
  if (nparts == 1 && (base in kindnum)) { mode = "node"; kind = base }
  else if (nparts == 3 && (fparts[1] in space) && (fparts[3] in space)) {
    mode = "edge"; kind = ""
    skind = space[fparts[1]]; ekind = space[fparts[3]]; etype = upper_snake(fparts[2])
    sc = ec = 0
    for (i = 1; i <= NF; i++) if ($i ~ /\.id$/) { if (!sc) sc = i; else if (!ec) ec = i }
    if (!sc || !ec) { warn("no endpoint columns"); mode = "skip" }
  } else { warn("not a node or edge file of a known kind, skipped"); mode = "skip" }
  next
}
mode == "skip" || $0 == "" { next }
{ sub(/\r$/, "") }

mode == "node" {
  if (!("id" in colidx)) { warn("no id column"); exit_code = 1; next }
  nid = node_id(kind, $colidx["id"]); if (nid == "") next
  if (nid in n_ts) { warn("duplicate " kind " " $colidx["id"]); exit_code = 1; next }
  N++; nodes[N] = nid
  if ("creationDate" in colidx) { n_tss[nid] = $colidx["creationDate"]; n_ts[nid] = to_us(n_tss[nid]) }
  else { n_tss[nid] = ""; n_ts[nid] = "" }   # static: the earliest time, fixed at the end
  n_del[nid] = ""; n_explicit[nid] = ("explicitlyDeleted" in colidx) && $colidx["explicitlyDeleted"] == "true"
  if ("deletionDate" in colidx && $colidx["deletionDate"] != "") {
    n_dels[nid] = $colidx["deletionDate"]; n_del[nid] = to_us(n_dels[nid])
    if (n_del[nid] > horizon) horizon = n_del[nid]
  }
  labels = jstr(kind)
  if ("type" in colidx && $colidx["type"] != "") labels = labels "," jstr($colidx["type"])
  props = ""
  for (i = 1; i <= ncol; i++) {
    c = colname[i]
    if ((c in skipcol) || (kind == "Place" || kind == "Organisation") && c == "type") continue
    if ((kind "." c) in fk) {
      if ($i == "") continue
      split(fk[kind "." c], f, "|")
      tid = node_id(f[2], $i); if (tid == "") continue
      if (f[3] == "out") add_rel(f[1], nid, tid, "", n_ts[nid], n_tss[nid], nid, "", "", 0)
      else add_rel(f[1], tid, nid, "", n_ts[nid], n_tss[nid], nid, "", "", 0)
      continue
    }
    pv = prop(c, $i, c)
    if (pv != "") props = props (props == "" ? "" : ",") pv
  }
  n_op[nid] = "{\"op\":\"create_node\",\"id\":" nid ",\"labels\":[" labels "],\"props\":{" props "}}"
  next
}

mode == "edge" {
  s = node_id(skind, $sc); e = node_id(ekind, $ec); if (s == "" || e == "") next
  ts = ""; tss = ""
  if ("creationDate" in colidx) { tss = $colidx["creationDate"]; ts = to_us(tss) }
  del = ""; dels = ""
  if ("deletionDate" in colidx && $colidx["deletionDate"] != "") {
    dels = $colidx["deletionDate"]; del = to_us(dels)
    if (del > horizon) horizon = del
  }
  props = ""
  for (i = 1; i <= ncol; i++) {
    if (i == sc || i == ec || (colname[i] in skipcol)) continue
    pv = prop(colname[i], $i, colname[i])
    if (pv != "") props = props (props == "" ? "" : ",") pv
  }
  add_rel(etype, s, e, props, ts, tss, "", del, dels,
          ("explicitlyDeleted" in colidx) && $colidx["explicitlyDeleted"] == "true")
  next
}

# Lines out: time, phase, sequence, JSON; sorted by the caller.
function emit(us, tss, phase, ops) {
  printf "%.0f\t%d\t%d\t{\"ts\":%s,\"ops\":[%s]}\n", us, phase, ++seq, jstr(tss), ops
}
function deleted(nid, us) { return n_del[nid] != "" && n_gone[nid] && n_del[nid] <= us }

END {
  if (exit_code) exit exit_code
  # The earliest time in the data set dates the static kinds.
  t0 = ""
  for (i = 1; i <= N; i++) if (n_ts[nodes[i]] != "" && (t0 == "" || n_ts[nodes[i]] < t0)) { t0 = n_ts[nodes[i]]; t0s = n_tss[nodes[i]] }
  for (i = 1; i <= R; i++) if (r_ts[i] != "" && (t0 == "" || r_ts[i] < t0)) { t0 = r_ts[i]; t0s = r_tss[i] }
  if (t0 == "") { t0 = 0; t0s = "1970-01-01T00:00:00Z" }
  for (i = 1; i <= N; i++) if (n_ts[nodes[i]] == "") { n_ts[nodes[i]] = t0; n_tss[nodes[i]] = t0s }

  # Which nodes get deleted, and when (never before they exist).
  for (i = 1; i <= N; i++) {
    nid = nodes[i]
    if (n_del[nid] == "" || !(n_explicit[nid] || n_del[nid] < horizon)) continue
    if (n_del[nid] < n_ts[nid]) { n_del[nid] = n_ts[nid]; n_dels[nid] = n_tss[nid] }
    n_gone[nid] = 1
  }

  for (i = 1; i <= R; i++) {
    s = r_start[i]; e = r_end[i]
    if (!(s in n_ts) || !(e in n_ts)) {
      printf "ldbc-to-mutations: %s %s -> %s: an end does not exist, skipped\n", r_type[i], s, e > "/dev/stderr"
      continue
    }
    us = r_ts[i]; tss = r_tss[i]
    if (us == "") { us = t0; tss = t0s }
    if (n_ts[s] > us) { us = n_ts[s]; tss = n_tss[s] }
    if (n_ts[e] > us) { us = n_ts[e]; tss = n_tss[e] }
    if (deleted(s, us) || deleted(e, us)) {
      printf "ldbc-to-mutations: %s %s -> %s: created after an end was deleted, skipped\n", r_type[i], s, e > "/dev/stderr"
      continue
    }
    op = "{\"op\":\"create_rel\",\"id\":\"R:" i "\",\"type\":" jstr(r_type[i]) ",\"start\":" s ",\"end\":" e ",\"props\":{" r_props[i] "}}"
    other = r_owner[i] == s ? e : s
    if (r_owner[i] != "" && us == n_ts[r_owner[i]] && n_ts[other] < us) n_rels[r_owner[i]] = n_rels[r_owner[i]] "," op
    else emit(us, tss, 2, op)
    if (r_del[i] == "" || !(r_explicit[i] || r_del[i] < horizon)) continue
    dus = r_del[i]; dtss = r_dels[i]
    if (dus < us) { dus = us; dtss = tss }
    if (deleted(s, dus) || deleted(e, dus)) continue   # gone with its end (detach)
    emit(dus, dtss, 3, "{\"op\":\"delete_rel\",\"id\":\"R:" i "\"}")
  }

  for (i = 1; i <= N; i++) {
    nid = nodes[i]
    emit(n_ts[nid], n_tss[nid], 1, n_op[nid] n_rels[nid])
    if (n_gone[nid]) emit(n_del[nid], n_dels[nid], 4, "{\"op\":\"delete_node\",\"id\":" nid ",\"detach\":true}")
  }
}
' "${files[@]}"
}

# Relationship ids: "R:n" placeholders become 1, 2, ... in order of first use
# (creation), after sorting by time.
number_rels() {
  awk '
  {
    line = $0; out = ""
    while (match(line, /"R:[0-9]+"/)) {
      key = substr(line, RSTART + 3, RLENGTH - 4)
      if (!(key in id)) id[key] = ++n
      out = out substr(line, 1, RSTART - 1) id[key]
      line = substr(line, RSTART + RLENGTH)
    }
    print out line
  }'
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
convert >"$tmp"
echo "// LDBC SNB data set $(basename "$dir") as shiplog mutations (scripts/ldbc-to-mutations.sh)."
echo "// Node id = KIND * 10^12 + LDBC id; KIND: 1 Place, 2 Organisation, 3 TagClass, 4 Tag, 5 Person, 6 Forum, 7 Post, 8 Comment."
LC_ALL=C sort -t "$(printf '\t')" -k1,1n -k2,2n -k3,3n "$tmp" | cut -f4- | number_rels
