// Package spool is the crash-safe, append-only on-disk queue between MQTT
// ingest and InfluxDB.
//
// # Guarantees
//
// A record whose Append (or Commit.Wait) returned nil has been written and
// fsync'd: it survives kill -9 and power loss, so ingest may PUBACK the
// device. Records are delivered to every named Cursor in append order, at
// least once: a consumer that dies before Ack sees the un-acked records again
// after a restart (consumers are expected to be idempotent). A record is never
// dropped silently: a segment is deleted only when every cursor has acked past
// it, and bytes that cannot be parsed are copied to Dir/corrupt/ and counted
// before they are skipped. When the segments reach Options.MaxBytes, Submit
// fails fast with ErrFull rather than blocking ingest.
//
// # On-disk format
//
// Dir holds segment files named by a zero-padded, increasing id
// (00000000000000000001.seg, ...). Every segment starts with a 16-byte header:
//
//	magic "UWSP" | version uint16 LE (1) | reserved uint16 | segment id uint64 LE
//
// followed by frames:
//
//	length uint32 LE | crc uint32 LE | payload (length bytes)
//
// where crc is CRC-32C (Castagnoli) over the four length bytes followed by the
// payload, so a corrupt length is caught as well as a corrupt payload.
// Segments are only ever appended to; a new one is started when the active
// segment would grow past Options.SegmentBytes (a single group commit is never
// split, so a segment may exceed that size by at most one group).
//
// Each cursor has a checkpoint file cursor-<name>.ckpt:
//
//	magic "UWCK" | version uint32 LE (1) | segment uint64 LE | offset uint64 LE | crc uint32 LE
//
// (crc is CRC-32C of the 24 bytes before it), replaced atomically: written to
// a temporary file, fsync'd, renamed, then the directory is fsync'd.
//
// A LOCK file (flock) keeps two processes from opening the same Dir.
//
// # Group commit
//
// Submit frames the payload and appends it to an in-memory buffer under a
// short lock; it never touches the disk. A single committer goroutine takes
// the whole buffer, writes it with one write call, fdatasyncs, and completes
// the one Commit shared by every record of that group. While it syncs, new
// submissions collect into the next group, so many concurrent writers share
// each fsync.
//
// # Recovery
//
// Open scans the last segment: a torn tail (an incomplete or CRC-failing frame
// with no valid frame after it) is truncated, logged and counted in
// urbanwatch_spool_truncated_bytes_total. A corrupt region followed by valid
// frames, found at Open in the last segment or later by Next/Scan in any
// segment, is resynchronised by searching forward for the next offset where a
// whole frame with a valid CRC parses; the skipped bytes are copied to
// Dir/corrupt/<segment>-<offset>.bin and counted in
// urbanwatch_spool_corrupt_records_total (one per corrupt region).
package spool
