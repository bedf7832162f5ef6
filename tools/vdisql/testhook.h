/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testhook.h - named pause points for the tests (TESTING.md, "Test hooks
 * of the programs").  A test that must kill vdisql, or start a second
 * statement, at an exact step of a statement sets
 *
 *   VDISQL_TEST_PAUSE_AT=point    the step (names below)
 *   VDISQL_TEST_PAUSE_MARK=path   created when the step is reached
 *   VDISQL_TEST_PAUSE_MS=ms       how long to wait there
 *
 * in vdisql's environment (one-shot or the instance).  Points:
 *
 *   restore_commit       a RESTORE has read, checked and prepared its new
 *                        database, before it checks its client and switches
 *   restore_switched     a RESTORE ... WITH RECOVERY (a full one, or the end
 *                        of a sequence) has put the database in place,
 *                        before the catalog says so
 *   restore_staged       a full RESTORE ... WITH NORECOVERY has put its new
 *                        database at the staged file, before it records
 *                        the new sequence
 *   backup_read_state    a BACKUP has read the database's state (chain,
 *                        base), before it opens its media and copies
 *   backup_before_close  a BACKUP has written its whole stream, before the
 *                        media are closed (the file renamed, VDC_Complete)
 *   backup_before_state  a BACKUP is complete on its media, before the
 *                        database's base or log position moves on
 *   backup_rebased       a full BACKUP has read the database's state and
 *                        become the differential base, before it writes
 *                        the new state
 *   log_apply            RESTORE LOG has applied its first transaction to
 *                        the staged file and goes on with the rest
 *   diff_apply           RESTORE of a differential has written its first
 *                        pages to the staged file
 *
 * Without the variables a point costs one getenv.
 */
#ifndef VDISQL_TESTHOOK_H
#define VDISQL_TESTHOOK_H

/** If VDISQL_TEST_PAUSE_AT names @p point: create the mark, then wait. */
void testhook_pause(const char *point);

#endif
