package crdt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cpggo/cpg/internal/wire"
	"github.com/stretchr/testify/require"
)

// normalOp is op as a decoder returns it: empty metadata is absent.
func normalOp(op Op) Op {
	if len(op.Meta) == 0 {
		op.Meta = nil
	}
	return op
}

func TestCodecRoundTripsWhatOwnersProduce(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		h := genHistory(r, defaultShape)
		for _, e := range h.events {
			if e.op == nil {
				continue
			}
			b := AppendOp(nil, e.op)
			got, err := DecodeOp(b)
			require.NoError(t, err, "%v", e.op)
			require.Equal(t, normalOp(*e.op), got)
		}
		s := partial(r, "r", h)
		dg := s.Digest()
		gotDg, err := DecodeDigest(AppendDigest(nil, &dg))
		require.NoError(t, err)
		require.True(t, dg.Equal(&gotDg))

		snap := s.Snapshot()
		gotSnap, err := DecodeDelta(AppendDelta(nil, &snap))
		require.NoError(t, err)
		require.Equal(t, snap, gotSnap)

		// A decoded delta does what the original does.
		a, b := newReplica("a"), newReplica("b")
		a.Merge(&snap)
		b.Merge(&gotSnap)
		requireSameView(t, a, b)
	}
}

func TestEmptyDigestAndDeltaRoundTrip(t *testing.T) {
	dg, err := DecodeDigest(AppendDigest(nil, &Digest{}))
	require.NoError(t, err)
	require.True(t, dg.Equal(&Digest{}))
	dl, err := DecodeDelta(AppendDelta(nil, &Delta{}))
	require.NoError(t, err)
	require.True(t, dl.Empty())
}

func validOp() Op {
	return Op{Owner: "a", Incarnation: 3, Seq: 7, Kind: Join, Scope: "s", Group: "/g", Member: "m",
		Count: 2, Meta: Meta{"zone": "eu", "rack": "1"}, Time: -5}
}

func TestDecodeOpRefusesMalformedInput(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen+1)
	bigMeta := Meta{}
	for i := range MaxMetaEntries + 1 {
		bigMeta[fmt.Sprint(i)] = ""
	}
	cases := map[string]func(*Op){
		"unknown kind":    func(op *Op) { op.Kind = SetMeta + 1 },
		"kind zero":       func(op *Op) { op.Kind = 0 },
		"seq zero":        func(op *Op) { op.Seq = 0 },
		"long owner":      func(op *Op) { op.Owner = long },
		"long scope":      func(op *Op) { op.Scope = long },
		"long group":      func(op *Op) { op.Group = long },
		"long member":     func(op *Op) { op.Member = long },
		"too many keys":   func(op *Op) { op.Meta = bigMeta },
		"too many bytes":  func(op *Op) { op.Meta = Meta{"k": strings.Repeat("v", MaxMetaBytes)} },
		"names at limits": nil,
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			op := validOp()
			if mutate == nil {
				op.Owner, op.Member = strings.Repeat("o", MaxNameLen), strings.Repeat("m", MaxNameLen)
				op.Meta = Meta{"k": strings.Repeat("v", MaxMetaBytes-1)}
				got, err := DecodeOp(AppendOp(nil, &op))
				require.NoError(t, err)
				require.Equal(t, op, got)
				return
			}
			mutate(&op)
			_, err := DecodeOp(AppendOp(nil, &op))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "crdt: decode op: "), err.Error())
		})
	}
}

func TestDecodeOpRefusesDuplicateMetaKeys(t *testing.T) {
	op := validOp()
	op.Meta = nil
	b := AppendOp(nil, &op)
	// Rebuild the tail with a metadata map that names one key twice.
	b = b[:len(b)-2] // empty meta count + time(-5) is one byte each
	b = wire.AppendUvarint(b, 2)
	for range 2 {
		b = wire.AppendString(b, "k")
		b = wire.AppendString(b, "v")
	}
	b = wire.AppendVarint(b, op.Time)
	_, err := DecodeOp(b)
	require.ErrorContains(t, err, "duplicate metadata key")
}

// Every strict prefix of a valid encoding is refused, and so is a trailing
// byte: a truncated or padded frame never decodes as something else.
func TestDecodersRefuseTruncationAndTrailingBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := genHistory(r, defaultShape)
	s := partial(r, "r", h)
	s.LocalJoin("s", "/g", "own", 2, Meta{"k": "v"}, 1)
	dg, snap, op := s.Digest(), s.Snapshot(), validOp()
	encodings := map[string][]byte{
		"op":            AppendOp(nil, &op),
		"digest":        AppendDigest(nil, &dg),
		"delta":         AppendDelta(nil, &snap),
		"owner state":   AppendOwnerState(nil, &snap.Owners[0]),
		"summary":       AppendSummary(nil, s.Summary()),
		"bucket hashes": AppendBucketHashes(nil, s.BucketHashes()),
	}
	decode := map[string]func([]byte) error{
		"op":            func(b []byte) error { _, err := DecodeOp(b); return err },
		"digest":        func(b []byte) error { _, err := DecodeDigest(b); return err },
		"delta":         func(b []byte) error { _, err := DecodeDelta(b); return err },
		"owner state":   func(b []byte) error { _, err := DecodeOwnerState(b); return err },
		"summary":       func(b []byte) error { _, err := DecodeSummary(b); return err },
		"bucket hashes": func(b []byte) error { _, err := DecodeBucketHashes(b); return err },
	}
	for name, b := range encodings {
		require.NoError(t, decode[name](b), name)
		for n := range len(b) {
			require.Error(t, decode[name](b[:n]), "%s cut to %d of %d bytes", name, n, len(b))
		}
		require.Error(t, decode[name](append(b[:len(b):len(b)], 0)), "%s with a trailing byte", name)
	}
}

func TestDecodeDeltaRefusesWhatMergeMustNotSee(t *testing.T) {
	entry := func(m string, c uint32) Entry { return Entry{Member: m, Count: c, Joined: 1} }
	v := Version{1, 1}
	cases := map[string]Delta{
		"entries at seq 0": {Owners: []OwnerState{{Owner: "a", Version: Version{Incarnation: 1}, Groups: []GroupEntries{
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1)}}}}}},
		"chain at seq 0": {Owners: []OwnerState{{Owner: "a", Version: Version{Incarnation: 1}, Chain: 7}}},
		"count zero": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 0)}}}}}},
		"entries unsorted": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m2", 1), entry("m1", 1)}}}}}},
		"entries repeated": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1), entry("m", 1)}}}}}},
		"groups unsorted": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "s", Group: "/h", Entries: []Entry{entry("m", 1)}},
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1)}}}}}},
		"scopes unsorted": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "t", Group: "/g", Entries: []Entry{entry("m", 1)}},
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1)}}}}}},
		"groups repeated": {Owners: []OwnerState{{Owner: "a", Version: v, Groups: []GroupEntries{
			{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1)}},
			{Scope: "s", Group: "/g", Entries: []Entry{entry("n", 1)}}}}}},
	}
	for name, dl := range cases {
		_, err := DecodeDelta(AppendDelta(nil, &dl))
		require.Error(t, err, name)
		require.True(t, strings.HasPrefix(err.Error(), "crdt: decode delta: "), err.Error())
		_, err = DecodeOwnerState(AppendOwnerState(nil, &dl.Owners[0]))
		require.Error(t, err, name)
		require.True(t, strings.HasPrefix(err.Error(), "crdt: decode owner state: "), err.Error())
	}
	ok := Delta{Owners: []OwnerState{{Owner: "a", Version: v, Chain: 7, Groups: []GroupEntries{
		{Scope: "s", Group: "/g", Entries: []Entry{entry("m", 1)}}}}}}
	_, err := DecodeDelta(AppendDelta(nil, &ok))
	require.NoError(t, err, "the cases differ from a valid delta only by their defect")
}

// Digest lines are sorted and unique, so a digest has one encoding.
func TestDecodeDigestRefusesUnsortedLines(t *testing.T) {
	line := func(owner string) OwnerVersion { return OwnerVersion{Owner: owner, Version: Version{1, 1}} }
	for name, dg := range map[string]Digest{
		"owners unsorted":     {Owners: []OwnerVersion{line("b"), line("a")}},
		"owners repeated":     {Owners: []OwnerVersion{line("a"), line("a")}},
		"tombstones unsorted": {Tombstones: []OwnerVersion{{Owner: "b"}, {Owner: "a"}}},
	} {
		_, err := DecodeDigest(AppendDigest(nil, &dg))
		require.ErrorContains(t, err, "not sorted", name)
	}
}

func TestOwnerStateAndFingerprintsRoundTrip(t *testing.T) {
	h := genHistory(rand.New(rand.NewPCG(5, 5)), defaultShape)
	s := partial(rand.New(rand.NewPCG(6, 6)), "r", h)
	for _, name := range s.Owners() {
		st, _ := s.OwnerState(name)
		got, err := DecodeOwnerState(AppendOwnerState(nil, &st))
		require.NoError(t, err)
		require.Equal(t, st, got)
	}
	sum, err := DecodeSummary(AppendSummary(nil, s.Summary()))
	require.NoError(t, err)
	require.Equal(t, s.Summary(), sum)
	hashes, err := DecodeBucketHashes(AppendBucketHashes(nil, s.BucketHashes()))
	require.NoError(t, err)
	require.Equal(t, s.BucketHashes(), hashes)
}

// A list length over the limit is refused before anything is allocated
// for it.
func TestDecodersRefuseHugeDeclaredLengths(t *testing.T) {
	huge := wire.AppendUvarint(nil, maxListLen+1)
	_, err := DecodeDigest(huge)
	require.ErrorContains(t, err, "exceeds limit")
	_, err = DecodeDelta(huge)
	require.ErrorContains(t, err, "exceeds limit")
	allocs := testing.AllocsPerRun(10, func() { _, _ = DecodeDelta(wire.AppendUvarint(nil, maxListLen)) })
	require.Less(t, allocs, 10.0, "a declared length alone allocates nothing big")
}

func TestValidateMeta(t *testing.T) {
	require.NoError(t, ValidateMeta(nil))
	require.NoError(t, ValidateMeta(Meta{"k": strings.Repeat("v", MaxMetaBytes-1)}))
	require.Error(t, ValidateMeta(Meta{"k": strings.Repeat("v", MaxMetaBytes)}))
	m := Meta{}
	for i := range MaxMetaEntries {
		m[fmt.Sprint(i)] = ""
	}
	require.NoError(t, ValidateMeta(m))
	m["one more"] = ""
	require.Error(t, ValidateMeta(m))
}

// Regression: a count past 2^32-1 used to wrap to 0, leaving an entry that
// no peer could decode, so this replica's deltas were refused whole.
func TestJoinCountSaturatesAndStaysEncodable(t *testing.T) {
	a, b := newReplica("a"), newReplica("b")
	j1 := a.LocalJoin("s", "/g", "m", math.MaxUint32, nil, 1)
	j2 := a.LocalJoin("s", "/g", "m", 1, nil, 2)
	e, ok := a.LocalEntry("s", "/g", "m")
	require.True(t, ok)
	require.Equal(t, uint32(math.MaxUint32), e.Count)

	require.Equal(t, Applied, b.Apply(&j1))
	require.Equal(t, Applied, b.Apply(&j2))
	snap := a.Snapshot()
	got, err := DecodeDelta(AppendDelta(nil, &snap))
	require.NoError(t, err)
	c := newReplica("c")
	c.Merge(&got)
	e, ok = c.Group("s", "/g").Lookup("a", "m")
	require.True(t, ok)
	require.Equal(t, uint32(math.MaxUint32), e.Count)
	require.Equal(t, ownerLine(b, "a"), ownerLine(c, "a"))
}

func ownerLine(s *State, owner string) OwnerState {
	for _, st := range s.Snapshot().Owners {
		if st.Owner == owner {
			return st
		}
	}
	return OwnerState{}
}
