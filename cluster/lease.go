package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease errors.
var (
	// ErrHeld: another worker holds the partition's lease.
	ErrHeld = errors.New("cluster: lease held by another worker")
	// ErrLost: the lease expired or was taken over; the holder must stop
	// acting for the partition at once.
	ErrLost = errors.New("cluster: lease lost")
)

// Defaults of LeaseOptions.
const (
	DefaultLeaseBucket = "uw_leases"
	DefaultLeaseTTL    = 10 * time.Second
)

// LeaseOptions configures the lease bucket. Every worker of a cluster must
// use the same bucket and TTL.
type LeaseOptions struct {
	Bucket   string
	TTL      time.Duration // an unrenewed lease (and a silent worker) expires after this
	Replicas int
}

// Leases keeps partition leases and worker liveness in a JetStream KV bucket
// whose entries expire TTL after their last write:
//
//	p.<partition> = {owner, token}   the partition's lease
//	w.<worker>    = ""               the worker is alive
//
// A lease is taken with a create-if-absent (kv.Create), renewed with a
// revision-checked update (kv.Update with the revision of the holder's last
// write) and lost when that check fails or the entry has expired. Its
// fencing token is the KV revision at which it was taken: revisions grow
// monotonically across the bucket, so a later holder always has a larger
// token, and writes a holder makes elsewhere (States.Save) carry it so a
// stale holder's writes are refused.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenLeases creates (or opens) the lease bucket.
func OpenLeases(ctx context.Context, js jetstream.JetStream, o LeaseOptions) (*Leases, error) {
	if o.Bucket == "" {
		o.Bucket = DefaultLeaseBucket
	}
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Replicas <= 0 {
		o.Replicas = DefaultReplicas
	}
	kv, err := openRetry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   o.Bucket,
			History:  1,
			TTL:      o.TTL,
			Storage:  jetstream.FileStorage,
			Replicas: o.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: open lease bucket %s: %w", o.Bucket, err)
	}
	if err := awaitBucket(ctx, kv); err != nil {
		return nil, err
	}
	return &Leases{kv: kv, ttl: o.TTL}, nil
}

// TTL is the lease lifetime.
func (ls *Leases) TTL() time.Duration { return ls.ttl }

// Lease is one worker's hold on one partition. It is not safe for
// concurrent use; the Assigner renews it from one goroutine.
type Lease struct {
	Partition int
	Owner     string
	// Token is the fencing token: the KV revision of the acquisition.
	Token uint64

	rev     uint64    // revision of the holder's last write
	renewed time.Time // local time the last write was sent
}

// Valid reports whether the holder may still act at now: its last renewal
// was sent less than ttl minus a safety margin ago (a holder cut off from
// the cluster stops before anyone else can have taken the lease over).
func (l *Lease) Valid(now time.Time, ttl time.Duration) bool {
	return now.Sub(l.renewed) < ttl-ttl/5
}

type leaseValue struct {
	Owner string `json:"owner"`
	Token uint64 `json:"token"`
}

func leaseKey(p int) string { return "p." + strconv.Itoa(p) }

// Acquire takes partition p's lease for owner if nobody holds it (ErrHeld
// otherwise).
func (ls *Leases) Acquire(ctx context.Context, p int, owner string) (*Lease, error) {
	sent := time.Now()
	// The token is the revision of this create; it is not known before, so
	// the value first says token 0 ("the revision of this entry") and the
	// first renewal writes it out.
	rev, err := ls.kv.Create(ctx, leaseKey(p), mustJSON(leaseValue{Owner: owner}))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, ErrHeld
		}
		return nil, fmt.Errorf("cluster: acquire partition %d: %w", p, err)
	}
	l := &Lease{Partition: p, Owner: owner, Token: rev, rev: rev, renewed: sent}
	return l, nil
}

// Renew extends l by another TTL. It returns ErrLost if the lease has
// expired or changed hands since l's last write; l must then be dropped.
func (ls *Leases) Renew(ctx context.Context, l *Lease) error {
	sent := time.Now()
	rev, err := ls.kv.Update(ctx, leaseKey(l.Partition), mustJSON(leaseValue{Owner: l.Owner, Token: l.Token}), l.rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: partition %d: %v", ErrLost, l.Partition, err)
		}
		return fmt.Errorf("cluster: renew partition %d: %w", l.Partition, err)
	}
	l.rev, l.renewed = rev, sent
	return nil
}

// Release gives l up at once (the holder has saved the partition's state),
// so the next owner need not wait for the TTL. Releasing a lease that was
// lost is not an error.
func (ls *Leases) Release(ctx context.Context, l *Lease) error {
	err := ls.kv.Delete(ctx, leaseKey(l.Partition), jetstream.LastRevision(l.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: release partition %d: %w", l.Partition, err)
	}
	return nil
}

// Holder returns partition p's current holder and fencing token; owner is
// "" when nobody holds it.
func (ls *Leases) Holder(ctx context.Context, p int) (owner string, token uint64, err error) {
	e, err := ls.kv.Get(ctx, leaseKey(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("cluster: read lease %d: %w", p, err)
	}
	var v leaseValue
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return "", 0, fmt.Errorf("cluster: lease %d: %w", p, err)
	}
	if v.Token == 0 {
		v.Token = e.Revision()
	}
	return v.Owner, v.Token, nil
}

// Heartbeat says worker is alive for another TTL.
func (ls *Leases) Heartbeat(ctx context.Context, worker string) error {
	if _, err := ls.kv.Put(ctx, "w."+worker, nil); err != nil {
		return fmt.Errorf("cluster: heartbeat %s: %w", worker, err)
	}
	return nil
}

// Leave removes worker from the live set at once (graceful shutdown).
func (ls *Leases) Leave(ctx context.Context, worker string) error {
	if err := ls.kv.Delete(ctx, "w."+worker); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("cluster: leave %s: %w", worker, err)
	}
	return nil
}

// Live returns the workers that sent a heartbeat within the TTL, sorted.
func (ls *Leases) Live(ctx context.Context) ([]string, error) {
	lister, err := ls.kv.ListKeysFiltered(ctx, "w.*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("cluster: list workers: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, strings.TrimPrefix(k, "w."))
	}
	sort.Strings(out)
	return out, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
