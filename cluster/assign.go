package cluster

import (
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// PartitionFunc owns one partition while ctx lives: it loads the
// partition's checkpoint, replays from it and processes new records,
// saving checkpoints under lease. When ctx ends (the lease was lost, or the
// partition moves to another worker, or shutdown) it must stop promptly;
// after a handoff (not a loss) it may save a final checkpoint first, which
// the Assigner waits for before it releases the lease. An error return
// releases the lease; the partition is taken again on a later tick.
type PartitionFunc func(ctx context.Context, lease *Lease) error

// AssignerOptions configures an Assigner. ID, Partitions, Leases and Run
// are required.
type AssignerOptions struct {
	ID         string // the worker's name, unique in the cluster
	Partitions int
	Leases     *Leases
	Run        PartitionFunc
	Tick       time.Duration // default TTL/4
	Logger     zerolog.Logger
}

// Assigner spreads the partitions over the live workers and runs the ones
// this worker owns. Each tick it says it is alive, renews its leases, and
// computes every partition's owner by rendezvous hashing over the live
// workers (so a join or a leave moves only the partitions that must move);
// it acquires the free partitions it should own and hands over the ones it
// should not (stop the PartitionFunc, then release the lease).
type Assigner struct {
	o AssignerOptions

	mu    sync.Mutex
	owned map[int]*owned
	wg    sync.WaitGroup
}

type owned struct {
	lease     *Lease
	cancel    context.CancelFunc
	done      chan struct{}
	releasing bool
}

// NewAssigner returns an Assigner; Run starts it.
func NewAssigner(o AssignerOptions) *Assigner {
	if o.Tick <= 0 {
		o.Tick = o.Leases.TTL() / 4
	}
	return &Assigner{o: o, owned: map[int]*owned{}}
}

// Owned returns the partitions this worker holds, sorted.
func (a *Assigner) Owned() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ps []int
	for p, ow := range a.owned {
		if !ow.releasing {
			ps = append(ps, p)
		}
	}
	sort.Ints(ps)
	return ps
}

// Run assigns until ctx ends, then stops every partition, releases its
// leases and leaves the live set, so the survivors take over without
// waiting for the TTL. A worker that dies instead is noticed by the TTL.
func (a *Assigner) Run(ctx context.Context) error {
	t := time.NewTicker(a.o.Tick)
	defer t.Stop()
	for {
		a.tick(ctx)
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-t.C:
		}
	}
}

func (a *Assigner) tick(ctx context.Context) {
	ls, log := a.o.Leases, a.o.Logger
	if err := ls.Heartbeat(ctx, a.o.ID); err != nil {
		log.Warn().Err(err).Msg("heartbeat failed")
	}
	// Renew every lease at once, each with a short deadline and without
	// holding a.mu: a node cut off from NATS must notice within the TTL,
	// not after one 5 s timeout per partition. A lease not renewed for
	// 0.8 TTL stops its partition before anyone else can take it.
	a.mu.Lock()
	held := make(map[int]*owned, len(a.owned))
	for p, ow := range a.owned {
		held[p] = ow
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for p, ow := range held {
		wg.Go(func() {
			var err error
			if ow.lease.Valid(time.Now(), ls.TTL()) {
				rctx, cancel := context.WithTimeout(ctx, max(ls.TTL()/5, 250*time.Millisecond))
				err = ls.Renew(rctx, ow.lease)
				cancel()
			} else {
				err = errors.New("not renewed for 0.8 TTL")
			}
			switch {
			case err == nil:
			case errors.Is(err, ErrLost) || !ow.lease.Valid(time.Now(), ls.TTL()):
				log.Warn().Err(err).Int("partition", p).Msg("lease lost; partition stopped")
				ow.cancel()
				a.mu.Lock()
				if a.owned[p] == ow {
					delete(a.owned, p)
				}
				a.mu.Unlock()
			default:
				log.Warn().Err(err).Int("partition", p).Msg("lease renewal failed; retrying")
			}
		})
	}
	wg.Wait()

	live, err := ls.Live(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("list workers failed")
		return
	}
	for p := range a.o.Partitions {
		want := Owner(p, live) == a.o.ID
		a.mu.Lock()
		ow, have := a.owned[p]
		a.mu.Unlock()
		switch {
		case want && !have:
			lease, err := ls.Acquire(ctx, p, a.o.ID)
			if err != nil {
				if !errors.Is(err, ErrHeld) {
					log.Warn().Err(err).Int("partition", p).Msg("acquire failed")
				}
				continue
			}
			a.start(ctx, lease)
		case !want && have && !ow.releasing:
			a.handOver(p, ow)
		}
	}
}

func (a *Assigner) start(ctx context.Context, lease *Lease) {
	pctx, cancel := context.WithCancel(ctx)
	ow := &owned{lease: lease, cancel: cancel, done: make(chan struct{})}
	a.mu.Lock()
	a.owned[lease.Partition] = ow
	a.mu.Unlock()
	a.o.Logger.Info().Int("partition", lease.Partition).Uint64("token", lease.Token).Msg("partition acquired")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := a.o.Run(pctx, lease)
		close(ow.done)
		if err != nil && pctx.Err() == nil {
			a.o.Logger.Error().Err(err).Int("partition", lease.Partition).Msg("partition failed; releasing")
			a.handOver(lease.Partition, ow)
		}
	}()
}

// handOver stops the partition's function and, once it has returned (and
// saved its state), releases the lease; renewals go on until then.
func (a *Assigner) handOver(p int, ow *owned) {
	a.mu.Lock()
	if ow.releasing {
		a.mu.Unlock()
		return
	}
	ow.releasing = true
	a.mu.Unlock()
	ow.cancel()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-ow.done
		ctx, cancel := context.WithTimeout(context.Background(), a.o.Leases.TTL())
		defer cancel()
		a.mu.Lock()
		if a.owned[p] == ow {
			delete(a.owned, p)
		}
		a.mu.Unlock()
		if err := a.o.Leases.Release(ctx, ow.lease); err != nil {
			a.o.Logger.Warn().Err(err).Int("partition", p).Msg("release failed; the lease will expire")
		}
		a.o.Logger.Info().Int("partition", p).Msg("partition handed over")
	}()
}

func (a *Assigner) shutdown() {
	a.mu.Lock()
	var all []*owned
	var ps []int
	for p, ow := range a.owned {
		all, ps = append(all, ow), append(ps, p)
	}
	a.mu.Unlock()
	for i, ow := range all {
		a.handOver(ps[i], ow)
	}
	a.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), a.o.Leases.TTL())
	defer cancel()
	_ = a.o.Leases.Leave(ctx, a.o.ID)
}

// Owner is partition p's owner among the live workers by rendezvous
// (highest random weight) hashing: each worker's weight for p is
// splitmix64's mixer over the mixed FNV-1a 64 of its name plus p times the
// golden-ratio increment, highest wins. (Mixing FNV of "worker/p" alone
// left the weights of names that differ in one byte correlated across
// partitions: n0 and n2 split 16 partitions 13 to 3.)
// "" when no worker is live.
func Owner(p int, live []string) string {
	var best string
	var bestScore uint64
	for _, w := range live {
		h := fnv.New64a()
		h.Write([]byte(w))
		if s := mix(mix(h.Sum64()) + uint64(p+1)*0x9e3779b97f4a7c15); best == "" || s > bestScore {
			best, bestScore = w, s
		}
	}
	return best
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
