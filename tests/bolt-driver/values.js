// Values for the driver tests (driver_test.js on the echo backend,
// serve_test.js on the query engine): one of every kind Bolt carries, and
// the equality the round trips are judged by.
'use strict';
const neo4j = require('neo4j-driver');

// Deep equality of driver values: neo4j Integers by value, temporal and
// spatial values by their text and fields, NaN equal to NaN, -0 to -0.
function same(a, b) {
  if (neo4j.isInt(a) || neo4j.isInt(b)) return neo4j.isInt(a) && neo4j.isInt(b) && a.equals(b);
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (a instanceof Int8Array || a instanceof Uint8Array)
    return (b instanceof Int8Array || b instanceof Uint8Array) && a.length === b.length && a.every((x, i) => (x & 255) === (b[i] & 255));
  if (neo4j.isPoint(a))
    return neo4j.isPoint(b) && ['srid', 'x', 'y', 'z'].every((k) => Object.is(Number(a[k]), Number(b[k])));
  if (temporal(a)) {
    // a zone DateTime sent without its offset comes back with it (the server looks it up)
    const noOffset = (t) => t.toString().replace(/[+-]\d\d:\d\d\[/, '[');
    return a.constructor === b.constructor && (a.toString() === b.toString() ||
      ((a.timeZoneOffsetSeconds == null || b.timeZoneOffsetSeconds == null) && noOffset(a) === noOffset(b)));
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && typeof a === 'object') {
    if (!b || typeof b !== 'object' || a.constructor !== b.constructor) return false;
    if (typeof a.toString === 'function' && a.toString !== Object.prototype.toString && a.toString() !== b.toString()) return false;
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}
const temporal = (v) => neo4j.isDate(v) || neo4j.isTime(v) || neo4j.isLocalTime(v) || neo4j.isDateTime(v) ||
  neo4j.isLocalDateTime(v) || neo4j.isDuration(v);
const show = (v) => { try { return String(v); } catch (e) { return typeof v; } };

const values = {
  null: null,
  true: true,
  false: false,
  tinyInt: neo4j.int(7),
  negInt: neo4j.int(-17),
  int16: neo4j.int(-30000),
  int32: neo4j.int(2000000000),
  maxInt: neo4j.int('9223372036854775807'),
  minInt: neo4j.int('-9223372036854775808'),
  float: 1.5,
  negZero: -0,
  nan: NaN,
  inf: -Infinity,
  tiny: 5e-324,
  emptyString: '',
  string: 'q"uote é€😀 \n\t',
  longString: 'x'.repeat(70000),
  bytes: new Int8Array([0, -1, 127, -128]),
  emptyList: [],
  list: [neo4j.int(1), neo4j.int(2)],
  mixedList: [neo4j.int(1), 'two', 3.5, null, [true]],
  bigList: Array.from({ length: 300 }, (_, i) => neo4j.int(i)),
  map: { a: neo4j.int(1), b: { c: ['d'] }, 'key with space': null },
  date: new neo4j.types.Date(2024, 2, 29),
  oldDate: new neo4j.types.Date(-44, 3, 15),
  time: new neo4j.types.Time(12, 30, 5, 123456789, 3600),
  localTime: new neo4j.types.LocalTime(23, 59, 59, 999999999),
  dateTimeOffset: new neo4j.types.DateTime(2024, 2, 29, 12, 30, 0, 1, -5 * 3600),
  dateTimeZone: new neo4j.types.DateTime(2024, 7, 1, 12, 0, 0, 0, undefined, 'Europe/Paris'),
  localDateTime: new neo4j.types.LocalDateTime(1969, 12, 31, 23, 59, 59, 500000000),
  duration: new neo4j.types.Duration(14, 3, 3600, 5),
  negDuration: new neo4j.types.Duration(0, -1, -2, 500000000),
  point2d: new neo4j.types.Point(7203, 1.5, -2.5),
  point3d: new neo4j.types.Point(9157, 1, 2, 3),
  wgs84: new neo4j.types.Point(4326, 12.5, 55.7),
  wgs84_3d: new neo4j.types.Point(4979, 12.5, 55.7, 30),
  dates: [new neo4j.types.Date(2020, 1, 1), new neo4j.types.Date(2021, 12, 31)],
};

module.exports = { same, show, temporal, values };
