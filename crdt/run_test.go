package crdt

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runOf encodes ops as one run.
func runOf(ops []Op) []byte {
	b := AppendRunHeader(nil, &ops[0], len(ops))
	for i := range ops {
		var prev *Op
		if i > 0 {
			prev = &ops[i-1]
		}
		b = AppendRunOp(b, &ops[i], prev)
	}
	return b
}

// mixedRun is a run that changes every field a run encodes by difference:
// scopes and groups that change and come back, counts of 0, 1 and the
// largest, metadata that comes and goes, every kind, and times that go
// back, jump across the whole int64 range and wrap.
func mixedRun() []Op {
	base := Op{Owner: "owner-1", Incarnation: math.MaxUint64, Seq: 41}
	fields := []Op{
		{Kind: Join, Scope: "s", Group: "/g", Member: "m1", Count: 1, Time: 1_700_000_000_000_000_000},
		{Kind: Join, Scope: "s", Group: "/g", Member: "m2", Count: 1, Time: 1_700_000_000_000_001_000},
		{Kind: Join, Scope: "s", Group: "/h", Member: "m1", Count: 3, Meta: Meta{"zone": "eu"}, Time: 5},
		{Kind: SetMeta, Scope: "t", Group: "/h", Member: "m1", Count: 0, Meta: Meta{"zone": "us", "rack": "2"}, Time: math.MinInt64},
		{Kind: Leave, Scope: "t", Group: "/h", Member: "", Count: math.MaxUint32, Time: math.MaxInt64},
		{Kind: Join, Scope: "s", Group: "/g", Member: strings.Repeat("x", MaxNameLen), Count: 1, Time: -1},
		{Kind: Join, Scope: "", Group: "", Member: "m3", Count: 1, Time: 0},
	}
	ops := make([]Op, len(fields))
	for i, f := range fields {
		op := f
		op.Owner, op.Incarnation, op.Seq = base.Owner, base.Incarnation, base.Seq+uint64(i)
		ops[i] = op
	}
	return ops
}

// A run decodes to the ops it was made of, field for field: the chain
// hash, which every replica computes from the decoded op, depends on each.
func TestRunRoundTrips(t *testing.T) {
	ops := mixedRun()
	got, err := DecodeRun(runOf(ops), nil, len(ops))
	require.NoError(t, err)
	require.Equal(t, ops, got)
	for i := range ops {
		require.Equal(t, chainOp(0, &ops[i]), chainOp(0, &got[i]))
	}
	one, err := DecodeRun(runOf(ops[:1]), got, 1)
	require.NoError(t, err)
	require.Equal(t, ops[:1], one, "decoding into a used slice leaves nothing of the previous run")
}

// A burst's op costs a few bytes beside its member name, where the op's
// own encoding repeats the owner, incarnation, scope, group and time.
func TestRunOfBurstIsSmall(t *testing.T) {
	ops := make([]Op, 1000)
	for i := range ops {
		ops[i] = Op{Owner: "node-a.example", Incarnation: 1_764_000_000_000_000_000, Seq: uint64(i + 1), Kind: Join,
			Scope: "default", Group: "/bench/one", Member: "m1234", Count: 1, Time: 1_764_000_000_000_000_000 + int64(i)*3_000}
	}
	perOp := float64(len(runOf(ops))) / float64(len(ops))
	require.Less(t, perOp, 12.0, "bytes per op of a run")
	require.Greater(t, float64(len(AppendOp(nil, &ops[1]))), 4*perOp, "against an op on its own")
}

func TestDecodeRunRefusesMalformedInput(t *testing.T) {
	ops := mixedRun()
	good := runOf(ops)
	_, err := DecodeRun(good, nil, len(ops))
	require.NoError(t, err)
	header := func(seq uint64, n int) []byte {
		first := ops[0]
		first.Seq = seq
		return AppendRunHeader(nil, &first, n)
	}
	body := good[len(header(ops[0].Seq, len(ops))):]
	cases := map[string][]byte{
		"empty":               {},
		"no ops":              header(1, 0),
		"seq 0":               append(header(0, len(ops)), body...),
		"seqs past the top":   append(header(math.MaxUint64-1, len(ops)), body...),
		"more ops than said":  append(header(1, len(ops)-1), body...),
		"fewer ops than said": append(header(1, len(ops)+1), body...),
		"truncated":           good[:len(good)-1],
		"trailing byte":       append(append([]byte{}, good...), 0),
		"unknown kind":        append(header(1, 1), 0|runHasScope|runHasGroup, 0, 0, 0, 0),
		"unknown flag":        append(header(1, 1), byte(Join)|runHasScope|runHasGroup|0x40, 0, 0, 0, 0),
		"first without group": append(header(1, 1), byte(Join)|runHasScope, 0, 0, 0),
		"empty metadata":      append(header(1, 1), byte(Join)|runHasScope|runHasGroup|runHasMeta, 0, 0, 0, 0, 0),
		"long member":         append(append(header(1, 1), byte(Join)|runHasScope|runHasGroup, 0, 0, 0x81, 0x08), make([]byte, MaxNameLen+1)...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeRun(b, nil, len(ops))
			require.Error(t, err)
		})
	}
	_, err = DecodeRun(good, nil, len(ops)-1)
	require.Error(t, err, "more ops than the caller's limit")
}

// FuzzDecodeRun: a run either decodes to consecutive ops of one owner
// within the limits, which encode back to a run that decodes to the same
// ops, or is refused; it never panics.
func FuzzDecodeRun(f *testing.F) {
	ops := mixedRun()
	f.Add(runOf(ops))
	f.Add(runOf(ops[:1]))
	f.Add(runOf(ops[2:5]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeRun(b, nil, 64)
		if err != nil {
			return
		}
		require.NotEmpty(t, got)
		for i := range got {
			op := &got[i]
			require.Equal(t, got[0].Owner, op.Owner)
			require.Equal(t, got[0].Incarnation, op.Incarnation)
			require.Equal(t, got[0].Seq+uint64(i), op.Seq)
			require.NotZero(t, op.Seq)
			require.Contains(t, []OpKind{Join, Leave, SetMeta}, op.Kind)
			require.NoError(t, ValidateMeta(op.Meta))
			// What a run carries, an op on its own carries too.
			alone, err := DecodeOp(AppendOp(nil, op))
			require.NoError(t, err)
			require.Equal(t, *op, alone)
		}
		again, err := DecodeRun(runOf(got), nil, 64)
		require.NoError(t, err)
		require.Equal(t, got, again)
	})
}

// A receiver decodes each run into the ops of the last one. The runs of a
// burst grow as it goes on (a lone change first, then larger shares), and
// each that was larger than the last used to allocate a slice of its
// exact length: a 2,000-join burst decoded that way allocated about one
// op slice per batch. Grown the way append grows, the slice is replaced a
// handful of times over runs of 1 to 200 ops.
func TestDecodeRunReusesItsSliceAsRunsGrow(t *testing.T) {
	var ops []Op
	replaced := 0
	for n := 1; n <= 200; n++ {
		run := make([]Op, n)
		for i := range run {
			run[i] = Op{Owner: "o", Incarnation: 1, Seq: uint64(i + 1), Kind: Join, Scope: "s", Group: "/g", Member: "m", Count: 1}
		}
		before := cap(ops)
		got, err := DecodeRun(runOf(run), ops, 1000)
		require.NoError(t, err)
		require.Len(t, got, n)
		if cap(got) != before {
			replaced++
		}
		ops = got
	}
	require.LessOrEqual(t, replaced, 10, "the slice was replaced %d times over 200 growing runs", replaced)
}
