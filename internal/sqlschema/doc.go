// Package sqlschema is what rowgear reads of a live table's schema
// (columns, types, character sets, primary key), and the SQL forms in which
// a column's value enters an event: the trigger generator (package
// triggers) writes them into the triggers, and the runtime (dispatch's
// Refresh, the bridge, ordering's commit gate) reads rows and gate rows the
// same way, so both sources and a reload agree byte for byte.
package sqlschema
