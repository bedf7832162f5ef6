/* SPDX-License-Identifier: Apache-2.0 */
/*
 * script.h - running a script: split at GO lines into batches, each lexed
 * and parsed whole, then run statement by statement (sqlcmd's rules: with
 * -b the first error stops the script).
 */
#ifndef VDISQL_SCRIPT_H
#define VDISQL_SCRIPT_H

#include "exec.h"

/** Run every batch of @p text (modified in place while it runs).
 * @return the number of failed statements (a batch that does not parse
 * counts as one). */
int script_run(const exec_ctx *cx, char *text, int stop_on_error);

#endif
