/* The crash-safe on-disk store-and-forward spool: every outgoing message, in seq order, until acknowledged and expired. */
#ifndef BBT_SPOOL_H
#define BBT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on one record (the protocol's BBT_MSG_MAX payload; topics are at most 89 bytes). */
#define BBT_SPOOL_PAYLOAD_MAX 16384
#define BBT_SPOOL_TOPIC_MAX 128

/* Record flags. */
#define BBT_SPOOL_RETAIN 0x01u /* publish with the MQTT retain flag */

#define BBT_SPOOL_MAX_BYTES_DEFAULT (64ull << 20)
#define BBT_SPOOL_SEGMENT_BYTES_MIN (64ull << 10)
#define BBT_SPOOL_RETAIN_ACKED_DEFAULT (7ll * 24 * 3600 * 1000)

struct bbt_spool;

struct bbt_spool_options {
        const char *dir;           /* the spool directory; created (0700) if missing, its parent must exist */
        uint64_t max_bytes;        /* bound on all segment files together; 0: 64 MiB */
        uint64_t segment_bytes;    /* a segment is closed once the next record would pass this;
                                      0: max_bytes / 16; raised to 64 KiB; at most max_bytes / 2 */
        int64_t retain_acked_ms;   /* how long acknowledged records stay for resends (>= 0) */
        /* The current wall-clock time in ms since the epoch, for bbt_spool_expire();
         * NULL: CLOCK_REALTIME. */
        int64_t (*clock_ms)(void *userdata);
        void *clock_userdata;
};

/* Fills OPTS with the defaults for the spool in DIR (the string is not copied:
 * it must live until bbt_spool_open() returns). */
void bbt_spool_options_init(struct bbt_spool_options *opts, const char *dir);

/* Called by bbt_spool_open() for each problem found on disk: PATH is the
 * file, OFFSET the byte offset in it, REASON one of "bad magic", "crc
 * mismatch", "length out of range", "truncated record", "seq out of order",
 * "bad file header", "unsupported format version", "torn record at tail,
 * truncated", or a meta file problem. Corrupt records are skipped (and
 * counted in stats.corrupt); a torn tail of the newest segment is cut off and
 * not counted as corruption. */
typedef void (*bbt_spool_report_cb)(void *userdata, const char *path, uint64_t offset,
                                    const char *reason);

/* One record read back. TOPIC is a copy held in the struct; PAYLOAD points
 * into a buffer of the spool (NUL-terminated after PAYLOAD_LEN bytes for
 * convenience) whose lifetime the returning function documents. */
struct bbt_spool_record {
        uint64_t seq;
        int64_t ts_ms;
        uint8_t flags;
        char topic[BBT_SPOOL_TOPIC_MAX + 1];
        size_t topic_len;
        const void *payload;
        size_t payload_len;
};

/* An inclusive range of seqs. */
struct bbt_seq_range {
        uint64_t from, to;
};

/* How many ranges of unstored seqs the meta file keeps (the newest). */
#define BBT_SPOOL_UNSTORED_RANGES 16
/* How many ranges of skipped seqs the meta file keeps for the agent: all of
 * the state file's (BBT_COUNTERS_SKIPPED_MAX), a whole copy for when that file
 * lost its latest writes. (One range per unclean stop: normally a handful.) */
#define BBT_SPOOL_SKIPPED_RANGES 256

/* What the spool's files said when it was opened: the witnesses the agent's
 * seq counter weighs so that it never hands out a seq used before
 * (docs/spool.md, "Which seq comes next"). 0 means none. */
struct bbt_spool_witness {
        uint64_t last_seq;         /* the highest valid record (after cutting a torn tail) */
        uint64_t newest_name;      /* the seq in the newest segment file's name: it was used,
                                      even if damage left the file without a readable record */
        uint64_t meta_acked;       /* the ack watermark in meta, before it was capped at last_seq */
        uint64_t meta_appended;    /* the highest seq appended when meta was last saved */
        uint64_t meta_seq_ceiling; /* the agent's seq reservation when meta was last saved */
        uint64_t meta_boot;        /* the agent's session counter when meta was last saved */
        const struct bbt_seq_range *meta_skipped; /* the copy of the agent's skipped ranges */
        size_t n_meta_skipped;                          /* (bbt_spool_set_skipped()) */
        bool tail_cut;             /* bytes at the end of the newest segment were cut off */
        bool meta_bad;             /* meta was unreadable (and ignored) */
        uint64_t corrupt;          /* corrupt records or regions skipped */
};

struct bbt_spool_stats {
        uint64_t depth;       /* records not acknowledged (exact) */
        uint64_t dropped;     /* unacknowledged records deleted because the spool was full;
                                 cumulative, persisted in the meta file */
        uint64_t corrupt;     /* corrupt records or regions skipped by the scan at open */
        uint64_t bytes;       /* size of all segment files */
        uint64_t segments;    /* number of segment files */
        uint64_t oldest_seq;  /* lowest seq on disk (0: none) */
        uint64_t last_seq;    /* highest seq on disk (0: none) */
        uint64_t acked;       /* the acknowledgement watermark */
        uint64_t unstored;    /* messages the spool could not store (a failed append, or one
                                 the agent lost before it: bbt_spool_note_unstored());
                                 cumulative, persisted in the meta file */
        uint64_t drop_cleared; /* dropped + unstored when bbt_spool_clear_drops() last ran:
                                  more than that means an unannounced or uncleared drop */
};

/* Opens (creating it if missing) the spool in OPTS->dir, locks it against a
 * second opener (-EBUSY), scans every segment checking every record's CRC
 * (problems go to REPORT_CB, which may be NULL, with USERDATA), cuts off a torn
 * record at the tail of the newest segment, and loads the meta file (ack
 * watermark and drop count). Only a small per-segment index is kept in
 * memory. On success *RET owns the spool (free with bbt_spool_close()).
 * Returns 0, -EINVAL for bad options, -EBUSY if another process (or another
 * bbt_spool in this one) has it open, -ENOMEM, or the -errno of a failed
 * file operation; *RET is untouched on failure. Blocking I/O: call it before
 * the loop runs. */
int bbt_spool_open(const struct bbt_spool_options *opts, bbt_spool_report_cb report_cb,
                   void *userdata, struct bbt_spool **ret);

/* Appends one record: SEQ (>= 1 and strictly greater than every seq on
 * disk, else -EINVAL), TS_MS (the caller's wall-clock time of the append; segments
 * expire by their newest TS_MS), FLAGS (BBT_SPOOL_RETAIN), TOPIC (1 ..
 * BBT_SPOOL_TOPIC_MAX bytes, NUL-terminated) and PAYLOAD (LEN bytes, at most
 * BBT_SPOOL_PAYLOAD_MAX; -EMSGSIZE otherwise). Both are copied.
 * The record is written with one write() (O_APPEND) and is in the page cache,
 * not yet durable: see bbt_spool_sync(). A new segment is started once the
 * current one would pass segment_bytes. When the spool would pass max_bytes,
 * the oldest segments (never the one being written) are deleted first, even
 * with unacknowledged records in them: those records are added to
 * stats.dropped (and the meta file is saved at once so the count survives a
 * crash), and *RET_DROPPED (may be NULL) is set to how many this call dropped
 * (0 normally). A failed append leaves no partial record behind (the segment
 * is truncated back) and the record is not in the spool: returns -ENOSPC,
 * -EFBIG, -EIO... and the caller decides; drops done before the failing
 * write stand (visible in stats.dropped). A failed write is counted in
 * stats.unstored and its SEQ remembered (bbt_spool_note_unstored()). Loop
 * thread only. */
int bbt_spool_append(struct bbt_spool *sp, uint64_t seq, int64_t ts_ms, uint8_t flags,
                     const char *topic, const void *payload, size_t len, uint64_t *ret_dropped);

/* Makes every record appended before the call durable: fdatasync() of the
 * segment being written, of segments closed since the previous sync, and an
 * fsync() of the directory if a segment file was created. *RET_SYNCED
 * (may be NULL) gets the highest seq now durable (0: none).
 * Thread safety: this is the one function (with bbt_spool_save_meta()) that
 * may run on another thread (e.g. uv_queue_work) concurrently with any
 * bbt_spool function on the loop thread except bbt_spool_close(): it takes
 * the file descriptors to sync under the spool's lock (as dup()s, so a
 * rotation or close on the loop thread cannot pull them away) and syncs
 * without holding it. Returns 0 or the first -errno. */
int bbt_spool_sync(struct bbt_spool *sp, uint64_t *ret_synced);

/* Returns in *RET the next record after the send cursor (in seq order, across
 * segments) and moves the cursor past it. RET->payload points into a buffer
 * of the spool that stays valid until the next bbt_spool_next(),
 * bbt_spool_rewind() or bbt_spool_close(). Returns 0, -ENOENT when every
 * record has been handed out (RET untouched), or -errno on a read error.
 * Corrupt records are skipped. Loop thread only. */
int bbt_spool_next(struct bbt_spool *sp, struct bbt_spool_record *ret);

/* Moves the send cursor back to just after the ack watermark: the next
 * bbt_spool_next() returns the oldest unacknowledged record again (after a
 * reconnect everything unacknowledged is sent again). Loop thread only. */
void bbt_spool_rewind(struct bbt_spool *sp);

/* Marks every record with seq <= SEQ acknowledged (the caller passes the
 * contiguous watermark of its in-flight window; a lower SEQ than the current
 * watermark is ignored, a SEQ above the last record is taken as the last
 * record). Depth drops by the number of records passed; the send cursor is
 * moved forward if it was behind. The watermark reaches disk with the next
 * bbt_spool_save_meta(): after a crash, records acknowledged since then are
 * sent again and the aggregator drops the duplicates. Returns 0 or -errno on a
 * read error (the watermark then stays where it was). Loop thread only. */
int bbt_spool_ack_through(struct bbt_spool *sp, uint64_t seq);

/* Writes the ack watermark and the drop count to DIR/meta atomically (temp
 * file, fdatasync, rename, fsync of the directory) if they changed since the
 * last save. Returns 0 or -errno (the old meta file stays). May run on
 * another thread like bbt_spool_sync() (two saves are serialised). */
int bbt_spool_save_meta(struct bbt_spool *sp);

/* Whether something bbt_spool_save_meta() writes has changed since it last
 * wrote (the ack watermark, the counters, the appended mark, the witnesses):
 * the caller saves only then. */
bool bbt_spool_meta_dirty(struct bbt_spool *sp);

/* Whether a change that should reach meta soon is unsaved: the counters, a
 * witness, or the appended mark while some record is not acknowledged (it is
 * then the second witness that the record existed, should the disk lose the
 * segment's tail). The ack watermark, and the appended mark once every record
 * is acknowledged, are not urgent: losing them to a crash costs a resend of
 * acknowledged records (which the aggregator drops as duplicates), never a
 * seq, because the segment files witness every seq appended until
 * bbt_spool_expire() deletes them, and the agent saves meta before it
 * expires anything. */
bool bbt_spool_meta_urgent(struct bbt_spool *sp);

/* Deletes the oldest segments while all their records are acknowledged and
 * their newest record is older than retain_acked_ms by the clock; stops at
 * the first segment that does not qualify (retention is always a prefix of
 * the seq range) and never deletes the segment being written. Returns the
 * number of segments deleted, or -errno. Loop thread only. */
int bbt_spool_expire(struct bbt_spool *sp);

/* Where a bbt_spool_read_range() call stopped. */
struct bbt_spool_range {
        uint64_t next;            /* the seq to continue from (FROM of the next call) */
        bool done;                /* nothing left in FROM..TO: do not call again */
        uint64_t first_available; /* lowest seq still in the spool (0: spool empty): the
                                     part of the range below it is no longer retained */
        uint64_t last_seq;        /* highest seq in the spool: the part above it does not exist */
        size_t delivered;         /* records given to the callback by this call */
};

/* The callback of bbt_spool_read_range(): returns 0 to take REC and go on, 1
 * to stop before REC (it is not taken: range.next is REC's seq, e.g. when the
 * outgoing queue is full), or a negative errno to abort. REC and its payload
 * are valid only during the call. It must not call other bbt_spool functions
 * on the same spool. */
typedef int (*bbt_spool_range_cb)(void *userdata, const struct bbt_spool_record *rec);

/* Calls CB for each retained record with FROM <= seq <= TO, in seq order, at
 * most MAX_RECORDS of them (so a resend can be paced; continue with
 * FROM = RET->next until RET->done). Acknowledged records count as retained;
 * seqs that are not in the spool (expired, dropped, corrupt, or never
 * spooled) are simply skipped. Resuming where the previous call stopped
 * costs nothing; any other FROM reads its segment from the start. Returns 0
 * with *RET filled, -EINVAL if FROM > TO or MAX_RECORDS is 0, CB's negative
 * errno, or -errno on a read error (RET untouched then). Loop thread only. */
int bbt_spool_read_range(struct bbt_spool *sp, uint64_t from, uint64_t to, size_t max_records,
                         bbt_spool_range_cb cb, void *userdata, struct bbt_spool_range *ret);

/* What the files said at open (see struct bbt_spool_witness). */
void bbt_spool_witness(const struct bbt_spool *sp, struct bbt_spool_witness *ret);

/* Keeps CEILING (the agent's seq reservation) in the meta file from the next
 * bbt_spool_save_meta() on: a second witness beside the agent's state file. */
void bbt_spool_set_seq_ceiling(struct bbt_spool *sp, uint64_t ceiling);

/* Keeps BOOT (the agent's session counter) in the meta file from the next
 * bbt_spool_save_meta() on: a second witness beside the state file. */
void bbt_spool_set_boot(struct bbt_spool *sp, uint64_t boot);

/* Keeps a copy of the agent's never-used seq ranges (at most
 * BBT_SPOOL_SKIPPED_RANGES, ascending) in the meta file from the next
 * bbt_spool_save_meta() on: a second witness beside the state file. */
void bbt_spool_set_skipped(struct bbt_spool *sp, const struct bbt_seq_range *ranges, size_t n);

/* Counts one message the spool could not store, and remembers SEQ (if not 0)
 * among the unstored seqs (the newest BBT_SPOOL_UNSTORED_RANGES ranges), both
 * persisted with the meta file. bbt_spool_append() calls it itself when a
 * write fails; the agent calls it for a message lost before the append.
 * Loop thread only. */
void bbt_spool_note_unstored(struct bbt_spool *sp, uint64_t seq);

/* Copies at most MAX of the remembered unstored seq ranges (ascending) to RET;
 * returns how many. */
size_t bbt_spool_unstored_seqs(const struct bbt_spool *sp, struct bbt_seq_range *ret, size_t max);

/* Marks every drop so far as announced and cleared (drop_cleared = dropped +
 * unstored), persisted with the meta file. */
void bbt_spool_clear_drops(struct bbt_spool *sp);

/* The highest seq appended and still on disk, 0 if the spool is empty. */
uint64_t bbt_spool_last_seq(const struct bbt_spool *sp);

/* Fills *RET with the counters. */
void bbt_spool_stats(const struct bbt_spool *sp, struct bbt_spool_stats *ret);

/* Syncs the segment being written, saves the meta file, releases the lock and
 * frees SP. No bbt_spool_sync()/bbt_spool_save_meta() may be running on
 * another thread. NULL-safe. Returns 0 or the first -errno of the final
 * sync or save (SP is freed either way). */
int bbt_spool_close(struct bbt_spool *sp);

#endif
