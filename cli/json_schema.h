/* The names and versions of the JSON documents heapsnap writes, in one place: the reports write
 * them as their "schema" and docs/json-schema.md documents each (tests/docs/check_json_schema
 * checks that page against the code). A change old readers would misread raises the version. */
#ifndef HEAPSNAP_JSON_SCHEMA_H
#define HEAPSNAP_JSON_SCHEMA_H

#define HEAPSNAP_SCHEMA_INFO "heapsnap.info/1"	     /* heapsnap info --format json */
#define HEAPSNAP_SCHEMA_SUMMARY "heapsnap.summary/1" /* heapsnap summary --format json */
#define HEAPSNAP_SCHEMA_DIFF "heapsnap.diff/1"	     /* heapdiff --format json */

#endif
