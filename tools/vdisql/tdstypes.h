/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tdstypes.h - the SQL Server types of result columns on the wire
 * ([MS-TDS] 2.2.5.4 data type definitions): a column declared by its
 * SQL Server type name ("int", "numeric(25,0)", "datetime",
 * "uniqueidentifier", "nvarchar(128)" ...) gets its TYPE_INFO in
 * COLMETADATA, and each value, given as the text vdisql prints, is sent in
 * that type's binary form, so that a driver hands the application an
 * integer, a decimal, a date or a GUID as SQL Server would.
 */
#ifndef VDISQL_TDSTYPES_H
#define VDISQL_TDSTYPES_H

#include <stddef.h>
#include <stdint.h>

enum tds_kind { TK_NVARCHAR, TK_INT, TK_BIT, TK_NUMERIC, TK_DATETIME, TK_GUID };

typedef struct tds_coltype {
  uint8_t kind;      /* enum tds_kind */
  uint8_t len;       /* bytes on the wire (nvarchar: see maxchars) */
  uint8_t prec;      /* numeric */
  uint16_t maxchars; /* nvarchar: 4000 when not given */
} tds_coltype;

/** The collation of the server and of every NVARCHAR we send. */
extern const uint8_t tds_collation[5];

/** The type named @p name (NULL or unknown: nvarchar(4000)). */
tds_coltype tds_type_parse(const char *name);
/** Its TYPE_INFO (the type byte and what follows it, collation included)
 * into @p out: the number of bytes (at most 8). */
size_t tds_type_info(const tds_coltype *t, uint8_t *out);
/** A non-NVARCHAR value: the length byte and the value's bytes into @p out
 * (at most 17): the number of bytes.  NULL, or text that is not a value of
 * the type, is sent as NULL (a zero length byte). */
size_t tds_type_value(const tds_coltype *t, const char *text, uint8_t *out);

#endif
