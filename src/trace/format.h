/*
 * format.h - the memsnap trace format, shared by the writer (libmemsnap_preload.so) and the
 * reader in libmemsnap. docs/trace-format.md is the prose version of this header; a change
 * here is a change there, and a new minor version.
 *
 * A trace is a 16-byte file header followed by framed chunks. Each chunk carries a CRC-32C and
 * (usually) a zstd frame; its payload is a sequence of records, each a type byte and fields.
 * The records of a file are in the order things happened: the tracker's background writer
 * merges its threads' events by time and resolves each freed pointer to the block it ends, so
 * the file holds no pointers. Blocks are numbered 0, 1, 2, ... in allocation order (per
 * image); a FREE names its block by its age, the number of blocks allocated since (>= 1), which
 * stays small and repetitive; an ALLOC names an allocation site "info" (size, stack, thread),
 * each defined once by an INFO record. All integers are little-endian; "v" is an unsigned
 * LEB128 varint, "s" a varint length and that many bytes.
 */
#ifndef MS_TRACE_FORMAT_H
#define MS_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MS_TRACE_MAGIC         "MEMSNAPT" /* 8 bytes, no terminator in the file */
#define MS_TRACE_VERSION_MAJOR 1
#define MS_TRACE_VERSION_MINOR 1
#define MS_TRACE_HEADER_SIZE   16 /* magic[8] u16 major u16 minor u32 header_size */

/* Chunk frame: u32 magic, u32 flags, u32 stored_size, u32 raw_size, u32 crc32c. */
#define MS_CHUNK_MAGIC      0x4b43534du /* "MSCK" */
#define MS_CHUNK_FRAME_SIZE 20
#define MS_CHUNK_CODEC_MASK 0xffu
#define MS_CHUNK_CODEC_NONE 0u
#define MS_CHUNK_CODEC_ZSTD 1u
#define MS_CHUNK_MAX_RAW    (64u << 20) /* a reader rejects larger chunks as corrupt */

/* Records: u8 type, then the fields listed. */
enum ms_trace_record {
    MS_REC_PROCESS = 0x01,    /* v pid, v ppid, v unix_ns, v flags, v sample_rate, v max_depth,
                                 s exe, s cmdline (arguments separated by NUL) */
    MS_REC_EXEC = 0x02,       /* same fields as PROCESS: a new image after execve(); blocks, infos,
                                 threads, stacks and modules of the old image end with it */
    MS_REC_CLOCK = 0x03,      /* v ticks, v monotonic_ns: pairs for mapping ticks to time */
    MS_REC_MODULE = 0x04,     /* v id, v load_bias, v start, v end, s build_id, s path */
    MS_REC_UNLOAD = 0x05,     /* v id, v ticks */
    MS_REC_STACK = 0x06,      /* v id, v parent_id, v ip: one node of the stack trie (ids from 1;
                                 parent 0 is the root; ip is a return address) */
    MS_REC_THREAD = 0x07,     /* v serial, v tid, v ticks, s name: a thread's start (its first
                                 call into the allocator), or its new name */
    MS_REC_THREAD_END = 0x08, /* v serial, v ticks */
    MS_REC_RSS = 0x09,        /* v ticks, v rss_bytes */
    MS_REC_MARKER = 0x0a,     /* v serial, v ticks, s label */
    MS_REC_END = 0x0b,        /* v ticks, v exit_kind (0 exit, 1 _exit, 2 abort, 3 quick_exit,
                                 4 exec of a program not recorded in this file: --no-follow,
                                 or a nested recording); in a chunk of its own, the last */
    /* The event stream. */
    MS_REC_TIME = 0x10,      /* v dticks: time moves on by dticks (from 0 for an image's first
                                TIME); the events that follow happened at or after it and before
                                the next TIME, which is written once ~20 us have passed */
    MS_REC_INFO = 0x11,      /* v size, v stack, v serial: defines the next info id (0, 1, ...) */
    MS_REC_ALLOC = 0x12,     /* v info: a new block */
    MS_REC_FREE = 0x13,      /* v age: the block numbered (next block - age) is freed */
    MS_REC_REALLOC = 0x14,   /* v age, v info: realloc() ended block (next - age) and made a new
                                one; age 0: the old block is not in the trace (an unmatched free,
                                or one resolved later by RELEASE) */
    MS_REC_RELEASE = 0x15,   /* v age: the block ends without a free of its own: it was the old
                                block of a REALLOC written before its ALLOC reached the writer */
    MS_REC_UNMATCHED = 0x16, /* v kind: a free (0) or a realloc's old block (1) of memory not
                               allocated in the trace (before recording, or in a fork parent) */
    MS_REC_MMAP = 0x17,      /* v addr, v size, v stack, v serial */
    MS_REC_MUNMAP = 0x18,    /* v addr, v size, v serial */
    MS_REC_MREMAP = 0x19,    /* v old_addr, v old_size, v addr, v size, v stack, v serial */
    MS_REC_LOST = 0x1a,      /* v count: events the tracker could not record (1.1) */
};

/*
 * Threads are named by a serial number, unique within one image (1, 2, ... in the order
 * threads first call the allocator); the THREAD record maps it to the kernel's tid, which can
 * be reused. A STACK node or a THREAD record may be written after its first use (they come
 * from other threads than the events): a reader resolves them when it has read the file.
 */

/* PROCESS/EXEC flags. */
#define MS_PROC_TSC 0x1u /* ticks are TSC cycles; otherwise CLOCK_MONOTONIC nanoseconds */
#define MS_PROC_FORKED                                                                             \
    0x2u                  /* started by fork(): blocks inherited from the parent are not in        \
                             this trace, so freeing them counts as an unmatched free */
#define MS_PROC_MMAP 0x4u /* mmap/munmap/mremap were recorded */

#define MS_VARINT_MAX 10

static inline uint8_t *ms_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t ms_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t ms_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Reads one varint from [*p, end); returns 0, or -1 when it runs past end or past 64 bits. */
static inline int ms_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (shift == 63 && b > 1)
                return -1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline void ms_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t ms_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* CRC-32C (Castagnoli), continuing from `crc` (start with 0). */
uint32_t ms_crc32c(uint32_t crc, const void *data, size_t len);

/* The CRC of a chunk: over the flags, stored_size and raw_size fields, then the payload. */
static inline uint32_t ms_chunk_crc(const uint8_t frame[MS_CHUNK_FRAME_SIZE], const void *payload,
                                    size_t len)
{
    return ms_crc32c(ms_crc32c(0, frame + 4, 12), payload, len);
}

#endif
