package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrFenced: a partition's state was written by a holder with a later
// lease; the writer's lease is stale and it must stop.
var ErrFenced = errors.New("cluster: fenced by a later lease")

// DefaultStateBucket is the default bucket of partition checkpoints.
const DefaultStateBucket = "uw_state"

// States keeps one checkpoint per partition in a JetStream KV bucket: the
// partition's state (the rules engine's snapshot of its trucks and gauges,
// and the keys of the events it announced since) and the stream sequence
// the state covers. A new owner loads it and replays the partition from the
// sequence after it.
//
// Values are limited by the server's max_payload (1 MiB by default); a
// partition whose snapshot outgrows it needs the object store (see
// docs/cluster.md).
type States struct {
	kv jetstream.KeyValue
}

// OpenStates creates (or opens) the checkpoint bucket.
func OpenStates(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*States, error) {
	if bucket == "" {
		bucket = DefaultStateBucket
	}
	if replicas <= 0 {
		replicas = DefaultReplicas
	}
	kv, err := openRetry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bucket,
			History:  1,
			Storage:  jetstream.FileStorage,
			Replicas: replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open state bucket %s: %w", bucket, err)
	}
	if err := awaitBucket(ctx, kv); err != nil {
		return nil, err
	}
	return &States{kv: kv}, nil
}

// Checkpoint is a partition's saved state.
type Checkpoint struct {
	// Seq is the last stream sequence the state covers (0: none); replay
	// starts at Seq+1.
	Seq uint64
	// Token is the fencing token of the lease it was saved under.
	Token uint64
	Data  []byte

	rev uint64
}

func stateKey(p int) string { return "p." + strconv.Itoa(p) }

// Load returns partition p's checkpoint; a partition never saved has the
// zero Checkpoint.
func (s *States) Load(ctx context.Context, p int) (Checkpoint, error) {
	e, err := s.kv.Get(ctx, stateKey(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: load state %d: %w", p, err)
	}
	b := e.Value()
	if len(b) < 16 {
		return Checkpoint{}, fmt.Errorf("cluster: state %d: %d bytes, want at least 16", p, len(b))
	}
	return Checkpoint{
		Token: binary.BigEndian.Uint64(b[0:8]),
		Seq:   binary.BigEndian.Uint64(b[8:16]),
		Data:  b[16:],
		rev:   e.Revision(),
	}, nil
}

// Save writes partition l.Partition's state as covering stream sequence
// seq, under lease l. It refuses (ErrFenced) if the stored checkpoint was
// written under a later lease: the check and the write are one
// revision-checked update, so a holder whose lease was taken over cannot
// overwrite its successor's state, whatever its clock says.
func (s *States) Save(ctx context.Context, l *Lease, seq uint64, data []byte) error {
	v := make([]byte, 16, 16+len(data))
	binary.BigEndian.PutUint64(v[0:8], l.Token)
	binary.BigEndian.PutUint64(v[8:16], seq)
	v = append(v, data...)
	for range 3 {
		cur, err := s.Load(ctx, l.Partition)
		if err != nil {
			return err
		}
		if cur.Token > l.Token {
			return fmt.Errorf("%w: partition %d saved under token %d, ours is %d", ErrFenced, l.Partition, cur.Token, l.Token)
		}
		if cur.rev == 0 {
			_, err = s.kv.Create(ctx, stateKey(l.Partition), v)
		} else {
			_, err = s.kv.Update(ctx, stateKey(l.Partition), v, cur.rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("cluster: save state %d: %w", l.Partition, err)
		}
		// Someone wrote in between: read again and judge by token.
	}
	return fmt.Errorf("cluster: save state %d: contended", l.Partition)
}
