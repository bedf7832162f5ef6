// SPDX-License-Identifier: Apache-2.0
/*
 * conform.h - internal interfaces of vdi-conform, the conformance and
 * fault-injection kit for VDI clients.  The kit plays SQL Server's side
 * (the server half of libvdi) against an unmodified client command and
 * scores what the client does.  One subsystem per file:
 *
 *   main.c      command line, --list, the run, the exit status
 *   scenario.c  the scenario table: what each one does and expects
 *   server.c    one phase of a scenario as the server: attach,
 *               configure, one thread per device, the completion agent
 *   script.c    what the server sends on a device, scenario by scenario
 *   position.c  GetPosition, SetPosition and Discard (scenario position)
 *   window.c    the commands in flight on a device; every completion
 *               checked (window.h holds the per-device state)
 *   util.c      names of codes and commands; monotonic time
 *   datagen.c   the seeded, position-addressable backup stream
 *   client.c    the client process: placeholders, spawn, wait, leftovers
 *   runner.c    a scenario's phases and verdict; scenarios in parallel
 *   report.c    the scorecard on stdout and the JUnit XML file
 *   engine.c    the sqlcmd-style stand-in ({engine}) for clients that
 *               start the engine themselves and name their own devices
 *
 * Nothing here trusts the client: every wait has a deadline, a client that
 * dies or hangs is the client's failure, and the client's whole process
 * group is killed at the end of each phase.
 */
#ifndef VDI_CONFORM_H
#define VDI_CONFORM_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "vdi.h"

#define CONFORM_NAME "vdi-conform"

#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

#define EVIDENCE_MAX 1200
#define TAIL_MAX     1024

/* ------------------------------------------------------------ options */

struct options {
  char **argv; /* the client command, NULL-terminated */
  int argc;
  const char **only; /* scenario names (NULL: the default suite) */
  int nonly;
  const char **env; /* extra "NAME=VALUE" for the client, placeholders */
  int nenv;
  const char *junit;
  const char *workdir; /* NULL: a fresh directory under $TMPDIR */
  const char *db;      /* {db} */
  uint64_t seed;
  int timeout_s;          /* per scenario */
  int command_timeout_ms; /* per command */
  int slow_ms;            /* slow_server: delay before the server attaches */
  int jobs;
  int quick;          /* less data: the kit's own tests and smoke runs */
  int keep;           /* keep the work directory */
  int openvdi_stream; /* --stream openvdi */
  char self[4096];
};

/* ------------------------------------------------------------ scenario.c */

enum fault {
  F_NONE,
  F_ABORT,     /* server SignalAbort mid-stream */
  F_KILL,      /* server process SIGKILLed mid-stream */
  F_NO_SERVER, /* the server never attaches */
  F_SLOW,      /* the server attaches late */
  F_STALL,     /* the server stops sending, then aborts */
  F_TIMEOUT    /* the server stops sending beyond the client's
                  serverTimeOut, and waits for the client to give up */
};

enum complete_mode {
  C_GRANT,  /* VDF_CompleteEnabled when the client asks RequestComplete */
  C_LEGACY, /* never: a server from before VDC_Complete */
};

struct scenario {
  const char *name;
  const char *expect; /* one line for the scorecard */
  int required;
  int ndev;
  uint32_t block;    /* blockSize */
  uint32_t maxxfer;  /* maxTransferSize */
  uint32_t nbuf;     /* buffers (commands in flight) per device */
  uint64_t bytes;    /* backup stream per device */
  int complete;      /* enum complete_mode */
  int nflush;        /* VDC_Flush commands in the middle of the stream */
  int disk;          /* positioned writes out of order: needs RandomAccess */
  int unknown;       /* unsupported command codes mid-stream + ClearError */
  int roundtrip;     /* a restore phase reads the backup back */
  int fault;         /* enum fault */
  int fault_restore; /* the fault hits the restore phase, not the backup */
  int name_len;      /* set name of exactly this length (0: usual) */
  int snapshot;      /* PrepareToFreeze mid-stream, Snapshot at the end;
                        restore: the metadata, then VDC_MountSnapshot */
  int prefix;        /* needs a prefix zone or alignment; the data of every
                        write must come back untouched */
  int tape;          /* tape-like: filemarks, Load, Rewind, SkipMarks,
                        SkipBlocks */
  int secondary;     /* applies when the client services devices from
                        secondary processes (OpenInSecondary) */
  int close_check;   /* the client must have called Close when it exits */
  int position;      /* GetPosition, SetPosition, Discard (supported or
                        ERROR_NOT_SUPPORTED, by the client's features) */
  int disk_full;     /* the backup's client may write only half the
                        stream to a file (RLIMIT_FSIZE) */
  int restore_ndev;  /* the restore presents only this many devices
                        (0: as many as the backup) */
};

extern const struct scenario scenarios[];
extern const int nscenarios;
const struct scenario *scenario_find(const char *name);
/* Bytes of the backup stream per device (--quick: a sixteenth). */
uint64_t scenario_bytes(const struct scenario *sc, int quick);

/* ------------------------------------------------------------ datagen.c */

/* The stream of device `dev` of a scenario is a pure function of (seed,
 * scenario, device, offset), so writes can be generated and reads checked
 * at any position, in any order. */
struct stream {
  uint64_t key;
  uint8_t head[1024]; /* --stream openvdi: the stream format's header */
  uint32_t head_len;
};
void stream_init(struct stream *st, const struct options *o,
                 const char *scenario, int dev, int ndev);
void stream_fill(const struct stream *st, uint64_t off, uint8_t *buf,
                 uint32_t n);
/* Index of the first byte that differs from the stream, or -1. */
int64_t stream_check(const struct stream *st, uint64_t off, const uint8_t *buf,
                     uint32_t n);
/* A small seeded generator for sizes and orders. */
uint64_t rng_next(uint64_t *state);

/* ------------------------------------------------------------ client.c */

struct placeholders {
  const char *set, *device, *file, *dir, *db, *op, *engine, *scenario;
  int devices;
  uint64_t seed;
};

struct client {
  pid_t pid;            /* also its process group */
  uint64_t fsize_limit; /* RLIMIT_FSIZE for the client (0: none) */
  int exited;
  int status; /* raw wait status */
  int timed_out;
  int64_t end_ms; /* when its end was seen (monotonic) */
  char log[4200];
  char leftovers[256]; /* "pid 12 (sleep), ..." when some were left */
  /* The client's output goes through a pipe to a thread that keeps the
   * first and the last LOG_KEEP bytes in the log (a client that prints
   * without end must not fill the disk). */
  int log_fd; /* read end, -1 when none */
  pthread_t logger;
  int logger_running;
  _Atomic int logger_stop;
  uint64_t log_bytes; /* everything the client printed */
};

/* Bytes of the client's output kept at each end of its log. */
#define LOG_KEEP (64 * 1024)

/* Expand {set} {device} {devices} {file} {dir} {db} {op} {engine}
 * {scenario} {seed} in s.  Returns malloc'd text.  With shell_quote, a
 * value that is not a plain word (spaces, quotes, $, ; ...) is put in
 * single quotes for sh, so that it stays one word and runs nothing. */
char *placeholders_expand(const char *s, const struct placeholders *ph,
                          int shell_quote);
/* Start the client command in its own process group, output to cl->log.
 * 0 or -1 (message in why). */
int client_start(struct client *cl, const struct options *o,
                 const struct placeholders *ph, char *why, size_t n);
/* Reap without blocking: 1 if the client has ended. */
int client_poll(struct client *cl);
/* Wait until the client ends or the deadline (monotonic ms) passes; then
 * kill whatever is left of its process group and note leftovers. */
void client_finish(struct client *cl, int64_t deadline_ms);
/* "exited 0", "killed by signal 11 (Segmentation fault)", ... */
void client_describe(const struct client *cl, char *buf, size_t n);
/* 1 if the client ended by itself with exit status 0. */
int client_succeeded(const struct client *cl);
/* The last non-empty line of the client's output (quoted, short). */
void client_last_line(const struct client *cl, char *buf, size_t n);
/* The last bytes of the client's output, for the JUnit report. */
void client_tail(const struct client *cl, char *buf, size_t n);
/* Call fn for each live process of process group pgid; how many. */
int group_each(pid_t pgid, void (*fn)(long pid, const char *comm, void *arg),
               void *arg);
/* 1 if a libvdi client listens for set `set` (default instance), 0 if
 * not, -1 if that cannot be seen. */
int set_listening(const char *set);

/* ------------------------------------------------------------ server.c */

/* One phase (backup or restore) of a scenario, played as the server.
 * Lives in shared memory (the server may run in a child process that the
 * kill scenario SIGKILLs), so it holds no pointers the child sets. */
struct phase {
  /* inputs */
  const struct scenario *sc;
  const struct options *o;
  int restore;
  uint64_t seed;
  char set_name[VDI_MAX_NAME + 1];
  int engine_mode; /* names come from the {engine} stand-in */
  char dir[4096];  /* the scenario's directory */
  struct client *cl;
  int64_t deadline_ms;
  uint64_t backup_bytes[VDI_MAX_DEVICES]; /* restore: what the backup sent */
  /* outputs */
  int not_applicable;
  int attached;     /* the server opened the set */
  int fault_fired;  /* the abort / kill / stall happened */
  int completed_ok; /* every device ended normally */
  int granted_complete;
  int set_seen;     /* no_server: the client's set was seen to exist */
  int64_t fault_ms; /* when the fault hit (monotonic) */
  uint32_t server_timeout_ms; /* the client's VDConfig.serverTimeOut */
  uint32_t prefix_zone;       /* the client's VDConfig.prefixZoneSize */
  int64_t overstayed_ms;      /* F_TIMEOUT: still waiting this long */
  _Atomic int
      client_procs; /* most processes of the client that mapped the set */
  uint32_t client_features;
  int client_closed;   /* vdi_srv_client_closed once the client ended */
  int refused;         /* restore_ndev: the restore was refused */
  uint32_t full_code;  /* disk_full: the first failed command's code */
  char full_what[160]; /* ... which command, where */
  /* What the backup leaves for the restore: the phase is cleared between
   * them, all but this. */
  struct phase_kept {
    /* position: what GetPosition said mid-backup (the restore goes back
     * there), and at which byte of the stream. */
    int has_mark;
    uint64_t mark_pos, mark_off;
    char detail[200]; /* what a passing phase did, for evidence */
  } kept;
  char dev_names[VDI_MAX_DEVICES][VDI_MAX_NAME + 1];
  int ndev;
  char failure[EVIDENCE_MAX]; /* the first problem found, "" if none */
  char note[256];             /* why not applicable */
};

/* Run one phase.  Fills p's outputs. */
void server_phase(struct phase *p);
/* How many devices the phase offers ({devices}). */
int phase_devices(const struct phase *p);
/* util.c: Win32 completion code name ("ERROR_HANDLE_EOF"). */
const char *win32_name(uint32_t code);
/* "VDC_Write" ... */
const char *command_name(uint32_t code);
/* Monotonic milliseconds. */
int64_t mono_ms(void);
void sleep_ms(int ms);

/* ------------------------------------------------------------ engine.c */

/* argv after "--engine-shim": DIR MAXMS [sqlcmd arguments] */
int engine_shim_main(int argc, char **argv);
/* Write the script {engine} names into dir ("<dir>/engine"). */
int engine_script(const char *dir, const char *self, int max_ms, char *path,
                  size_t n);
/* Wait for the stand-in's request: fills op ("BACKUP"/"RESTORE") and the
 * device names.  0; -1 on timeout / client exit / bad request (why). */
int engine_wait_request(const char *dir, struct client *cl, int64_t deadline,
                        char *op, size_t opn, char names[][VDI_MAX_NAME + 1],
                        int *ndev, char *why, size_t whyn);
/* Tell the stand-in how the statement ended (0 ok, else failed). */
void engine_verdict(const char *dir, int failed);

/* ------------------------------------------------------------ runner.c */

enum verdict { V_PASS, V_FAIL, V_NA };

struct result {
  int verdict;
  double seconds;
  char evidence[EVIDENCE_MAX];
  char tail[TAIL_MAX]; /* the client's last output (JUnit system-out) */
};

/* Run the selected scenarios, `jobs` at a time, each in its own process. */
void runner_run(const struct options *o, const struct scenario **list, int n,
                struct result *res);

/* ------------------------------------------------------------ report.c */

void report_scorecard(const struct options *o, const struct scenario **list,
                      int n, const struct result *res, double seconds);
/* 0 or -errno. */
int report_junit(const char *path, const struct scenario **list, int n,
                 const struct result *res, double seconds);
/* Append XML-escaped text (ASCII only; other bytes become '?'). */
void xml_escape(FILE *f, const char *s);

#endif
