/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.h - the local protocol between `vdisql -Q/-i` and a running
 * instance (`vdisql --serve`), and the instance's address.
 *
 * One stream connection per invocation.  Every message is a frame: a type
 * byte, a 32-bit little-endian length, that many bytes.
 *   client -> instance:  'H' "<version> <flags>" (flags: WIRE_F_*), 'C' the
 *                        column separator, 'N' the server name for Msg
 *                        lines, one 'S' frame per script (the -Q text, or
 *                        each -i file), then 'Z'
 *   instance -> client:  'O' bytes for stdout, 'E' bytes for stderr, in the
 *                        order they were written, then 'X' the exit status
 *                        (4 bytes)
 * A client that hangs up before 'X' cancels what
 * it asked for: the instance aborts the statement's virtual device set.
 *
 * The address is an abstract Unix socket named after the instance
 * directory's device and inode, so every spelling of the path meets the
 * same instance.  Abstract names have no permissions, so both ends check
 * the other's credentials (SO_PEERCRED): see session.c and remote.c.
 */
#ifndef VDISQL_WIRE_H
#define VDISQL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define WIRE_VERSION   1
#define WIRE_F_STOP    0x1 /* -b: the first error stops, exit status 1 */
#define WIRE_F_STDERR  0x2 /* -r: error messages to stderr */
#define WIRE_F_NOHEAD  0x4 /* -h -1: no header line */
#define WIRE_MAX_FRAME (64u << 20)

/** The instance's socket address for directory @p dir.  @return 0, or -1
 * with errno set (the directory cannot be seen). */
int wire_addr(const char *dir, struct sockaddr_un *a, socklen_t *len);

/** Send the 'X' frame: the exit status, 4 bytes little-endian (as
 * wire_send_until). */
int wire_send_status(int fd, uint32_t status, volatile int *cancel);
/** The status of an 'X' frame's bytes. */
uint32_t wire_status(const char *data);
/** Write one frame (all of it).  @return 0 or -1. */
int wire_send(int fd, char type, const void *data, size_t len);
/** The same; once *@p cancel is set (not NULL), a peer that takes nothing
 * for a second fails it and the connection is shut down. */
int wire_send_until(int fd, char type, const void *data, size_t len,
                    volatile int *cancel);
/** Read one frame: its type in @p type, its bytes (malloc'd, NUL added)
 * in @p data.  @return the length, or -1 on error or end of stream. */
long wire_recv(int fd, char *type, char **data);

#endif
