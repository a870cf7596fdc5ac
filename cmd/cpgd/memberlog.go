package main

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// The members' records are a log: each is stored under the next sequence
// number of the bucket, key and record together, and the record it
// replaces is deleted. New records thus always land on the log's last
// page, so a commit of many joins rewrites one or two leaf pages instead of
// one page per join at random places in a tree keyed by name; the index
// from a member to its record is kept in memory (memberIndex) and rebuilt
// from the log at open.

// recordsFillPercent fills the log's pages before splitting them: records
// are appended, so a split page never receives another record and half-full
// pages would only double the file and the pages to read at start.
const recordsFillPercent = 1.0

// memberKey names one member of one group of one scope.
type memberKey struct{ scope, group, member string }

// appendEncoded lays the key out as three length-prefixed strings, so no
// name's bytes can be mistaken for a separator.
func (k memberKey) appendEncoded(b []byte) []byte {
	for _, s := range []string{k.scope, k.group, k.member} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func (k memberKey) encode() []byte {
	return k.appendEncoded(make([]byte, 0, 3*binary.MaxVarintLen16+len(k.scope)+len(k.group)+len(k.member)))
}

func decodeMemberKey(b []byte) (memberKey, error) {
	k, rest, err := readMemberKey(b)
	if err != nil {
		return memberKey{}, err
	}
	if len(rest) != 0 {
		return memberKey{}, errors.New("bad member key: trailing bytes")
	}
	return k, nil
}

// readMemberKey reads an encoded key at the start of b and returns the
// bytes after it.
func readMemberKey(b []byte) (memberKey, []byte, error) {
	if _, ok := encodedKeyLen(b); !ok {
		return memberKey{}, nil, errors.New("bad member key")
	}
	var parts [3]string
	for i := range parts {
		s, rest, ok := readString(b)
		if !ok {
			return memberKey{}, nil, errors.New("bad member key")
		}
		parts[i], b = s, rest
	}
	return memberKey{parts[0], parts[1], parts[2]}, b, nil
}

// encodedKeyLen is the length of the encoded key at the start of b.
func encodedKeyLen(b []byte) (int, bool) {
	n := 0
	for range 3 {
		l, used := binary.Uvarint(b[n:])
		if used <= 0 || l > uint64(len(b)-n-used) {
			return 0, false
		}
		n += used + int(l)
	}
	return n, true
}

// readString reads a length-prefixed string at the start of b.
func readString(b []byte) (string, []byte, bool) {
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)-used) {
		return "", nil, false
	}
	return string(b[used : used+int(n)]), b[used+int(n):], true
}

// memberRecord is what the store holds of one member this agent joined.
type memberRecord struct {
	Meta map[string]string
	// Joins counts the member's joins by the lease they were made with
	// ("" for none); the member's join count is their sum.
	Joins map[string]uint32
}

func (r memberRecord) count() int {
	n := 0
	for _, c := range r.Joins {
		n += int(c)
	}
	return n
}

func (r memberRecord) clone() memberRecord {
	out := memberRecord{Meta: r.Meta, Joins: make(map[string]uint32, len(r.Joins))}
	for l, c := range r.Joins {
		out.Joins[l] = c
	}
	return out
}

// leased reports whether some of r's joins were made under a lease.
func (r memberRecord) leased() bool {
	return len(r.Joins) > 1 || (len(r.Joins) == 1 && r.Joins[""] == 0)
}

// appendEncoded lays the record out as the number of metadata pairs, each
// key and value length-prefixed, then the number of leases, each lease ID
// length-prefixed and its join count; both in key order, so one record has
// one encoding.
func (r memberRecord) appendEncoded(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Meta)))
	appendMeta := func(k, v string) {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	inOrder(r.Meta, appendMeta)
	b = binary.AppendUvarint(b, uint64(len(r.Joins)))
	inOrder(r.Joins, func(l string, c uint32) {
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
		b = binary.AppendUvarint(b, uint64(c))
	})
	return b
}

// encodedSize is an upper bound of the record's encoded length.
func (r memberRecord) encodedSize() int {
	n := 2 * binary.MaxVarintLen32
	for k, v := range r.Meta {
		n += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	for l := range r.Joins {
		n += 2*binary.MaxVarintLen32 + len(l)
	}
	return n
}

// inOrder calls f with m's entries in key order, sorting (and allocating)
// only for maps of more than one entry: a member is nearly always joined
// once, without a lease, and without metadata.
func inOrder[V any](m map[string]V, f func(string, V)) {
	if len(m) <= 1 {
		for k, v := range m {
			f(k, v)
		}
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f(k, m[k])
	}
}

// decodeRecord reads an encoded record. It refuses anything appendEncoded
// would not have written: keys out of order or repeated, a join count of
// zero, a lease ID of the wrong form, no join at all, trailing bytes.
func decodeRecord(b []byte) (memberRecord, error) {
	bad := func(what string) (memberRecord, error) {
		return memberRecord{}, fmt.Errorf("bad member record: %s", what)
	}
	var r memberRecord
	n, used := binary.Uvarint(b)
	if used <= 0 || n > uint64(len(b)) {
		return bad("metadata size")
	}
	b = b[used:]
	if n > 0 {
		r.Meta = make(map[string]string, n)
	}
	last := ""
	for i := range n {
		k, rest, ok := readString(b)
		if !ok {
			return bad("metadata key")
		}
		if i > 0 && k <= last {
			return bad("metadata keys out of order")
		}
		v, rest, ok := readString(rest)
		if !ok {
			return bad("metadata value")
		}
		r.Meta[k], last, b = v, k, rest
	}
	n, used = binary.Uvarint(b)
	if used <= 0 || n == 0 || n > uint64(len(b)) {
		return bad("join count")
	}
	b = b[used:]
	r.Joins = make(map[string]uint32, n)
	for i := range n {
		l, rest, ok := readString(b)
		if !ok || (l != "" && !validLeaseID(l)) || (i > 0 && l <= last) {
			return bad(fmt.Sprintf("lease %q", l))
		}
		c, used := binary.Uvarint(rest)
		if used <= 0 || c == 0 || c > maxJoins {
			return bad(fmt.Sprintf("joins under lease %q", l))
		}
		r.Joins[l], last, b = uint32(c), l, rest[used:]
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return r, nil
}

// decodeLogEntry reads one entry of the log: a member's key and record.
func decodeLogEntry(v []byte) (memberKey, memberRecord, error) {
	k, rest, err := readMemberKey(v)
	if err != nil {
		return memberKey{}, memberRecord{}, err
	}
	r, err := decodeRecord(rest)
	if err != nil {
		return memberKey{}, memberRecord{}, fmt.Errorf("member %q of %q in scope %q: %w", k.member, k.group, k.scope, err)
	}
	return k, r, nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// indexedMember is where a member's record lies in the log, and the
// record, encoded (smaller in memory than its maps).
type indexedMember struct {
	seq    uint64 // 0: the member has no record (in a transaction: deleted)
	record []byte
	leased bool // some joins were made under a lease
}

// joinedOnce is the record of a member joined once without a lease or
// metadata, by far the most common: the index shares this copy.
var joinedOnce = memberRecord{Joins: map[string]uint32{"": 1}}.appendEncoded(nil)

func newIndexedMember(seq uint64, record []byte, leased bool) indexedMember {
	if bytes.Equal(record, joinedOnce) {
		record = joinedOnce
	}
	return indexedMember{seq: seq, record: record, leased: leased}
}

// memberIndex is the log's contents by member, keyed by the member's
// encoded key (one string, smaller than a memberKey's three). Only the
// commit loop changes it, after a commit, so reads within a transaction
// need no lock; reads from elsewhere hold mu.
type memberIndex struct {
	mu      sync.RWMutex
	members map[string]indexedMember
	byLease map[string]map[string]struct{} // the members a lease holds joins of
}

// rebuild reads the log into the index; an entry it cannot read is an
// error naming it, as dropping it silently would lose an acknowledged
// registration.
func (x *memberIndex) rebuild(tx *bolt.Tx) error {
	x.members = make(map[string]indexedMember)
	x.byLease = make(map[string]map[string]struct{})
	return tx.Bucket(bucketRecords).ForEach(func(seq, v []byte) error {
		if len(seq) != 8 {
			return fmt.Errorf("bad log key %x", seq)
		}
		n, ok := encodedKeyLen(v)
		if !ok {
			return errors.New("bad member key")
		}
		key, record := string(v[:n]), v[n:]
		if _, dup := x.members[key]; dup {
			k, _ := decodeMemberKey(v[:n])
			return fmt.Errorf("member %q of %q in scope %q: two records", k.member, k.group, k.scope)
		}
		e := indexedMember{seq: binary.BigEndian.Uint64(seq), record: joinedOnce}
		// Most members are joined once, without a lease or metadata:
		// their record needs neither decoding nor a copy of its own.
		if !bytes.Equal(record, joinedOnce) {
			_, r, err := decodeLogEntry(v)
			if err != nil {
				return err
			}
			e.record, e.leased = bytes.Clone(record), r.leased()
			x.bind(key, r)
		}
		x.members[key] = e
		return nil
	})
}

func (x *memberIndex) bind(key string, r memberRecord) {
	for l := range r.Joins {
		if l == "" {
			continue
		}
		if x.byLease[l] == nil {
			x.byLease[l] = make(map[string]struct{})
		}
		x.byLease[l][key] = struct{}{}
	}
}

func (x *memberIndex) unbind(key string, r memberRecord) {
	for l := range r.Joins {
		if held := x.byLease[l]; held != nil {
			delete(held, key)
			if len(held) == 0 {
				delete(x.byLease, l)
			}
		}
	}
}

// commit makes the index say what a committed transaction wrote.
func (x *memberIndex) commit(changed map[string]indexedMember) {
	if len(changed) == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for key, e := range changed {
		if old, ok := x.members[key]; ok && old.leased {
			// Decoded before: an index entry that does not decode is
			// refused at rebuild or never written.
			r, _ := decodeRecord(old.record)
			x.unbind(key, r)
		}
		if e.seq == 0 {
			delete(x.members, key)
			continue
		}
		x.members[key] = e
		if e.leased {
			r, _ := decodeRecord(e.record)
			x.bind(key, r)
		}
	}
}

// keyBuffer holds a member's encoded key while it is looked up.
type keyBuffer [128]byte

// get reads k's record as last committed.
func (x *memberIndex) get(k memberKey) (memberRecord, error) {
	_, r, err := x.getWithSeq(k)
	return r, err
}

// getWithSeq reads k's record as last committed, and where it lies in the
// log (0: k has no record). A sequence number names one record for good:
// a change writes the new record under a new one.
func (x *memberIndex) getWithSeq(k memberKey) (uint64, memberRecord, error) {
	var buf keyBuffer
	key := k.appendEncoded(buf[:0])
	x.mu.RLock()
	e, ok := x.members[string(key)]
	x.mu.RUnlock()
	if !ok {
		return 0, memberRecord{}, nil
	}
	r, err := decodeRecord(e.record)
	return e.seq, r, err
}

// snapshot decodes every record, as last committed.
func (x *memberIndex) snapshot() (map[memberKey]memberRecord, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[memberKey]memberRecord, len(x.members))
	for key, e := range x.members {
		k, err := decodeMemberKey([]byte(key))
		if err != nil {
			return nil, err
		}
		r, err := decodeRecord(e.record)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

// storeTx is a transaction of the store: the bbolt transaction and the
// records it changed, which the index takes on once it is committed.
type storeTx struct {
	tx      *bolt.Tx
	index   *memberIndex
	changed map[string]indexedMember
	log     *bolt.Bucket // the member log, once a write looked it up
}

// memberLog is the log's bucket, looked up once per transaction rather
// than once per record: a group commit writes many.
func (t *storeTx) memberLog() *bolt.Bucket {
	if t.log == nil {
		t.log = t.tx.Bucket(bucketRecords)
		t.log.FillPercent = recordsFillPercent
	}
	return t.log
}

// lookup is the index entry of the member of encoded key, as this
// transaction sees it.
func (t *storeTx) lookup(key []byte) (indexedMember, bool) {
	if e, ok := t.changed[string(key)]; ok {
		return e, e.seq != 0
	}
	// The commit loop is the index's only writer, and runs this.
	e, ok := t.index.members[string(key)]
	return e, ok
}

// getMember reads k's record; a member with no record has no joins.
func getMember(t *storeTx, k memberKey) (memberRecord, error) {
	var buf keyBuffer
	e, ok := t.lookup(k.appendEncoded(buf[:0]))
	if !ok {
		return memberRecord{}, nil
	}
	return decodeRecord(e.record)
}

// putMember stores r as k's record, or deletes it when r holds no joins.
func putMember(t *storeTx, k memberKey, r memberRecord) error {
	e, err := encodeEntry(k, r)
	if err != nil {
		return err
	}
	return t.putEntry(e, r)
}

// memberEntry is a member's record laid out as the log stores it, ready
// to be written: a client's change encodes it before its write reaches
// the commit loop, the store's serial step.
type memberEntry struct {
	// buf holds the log's key (the sequence number, set as it is
	// written), the member's encoded key and its record: one allocation.
	buf    []byte
	keyEnd int    // the member's key is buf[8:keyEnd], its record buf[keyEnd:]
	key    string // the member's encoded key, as the index holds it
}

// encodeEntry lays out r as k's record, or refuses a record no start
// could replay.
func encodeEntry(k memberKey, r memberRecord) (memberEntry, error) {
	for l, c := range r.Joins {
		if c == 0 || c > maxJoins || (l != "" && !validLeaseID(l)) {
			return memberEntry{}, fmt.Errorf("record of %q in %q: %d joins under lease %q", k.member, k.group, c, l)
		}
	}
	buf := make([]byte, 8, 8+3*binary.MaxVarintLen32+len(k.scope)+len(k.group)+len(k.member)+r.encodedSize())
	buf = k.appendEncoded(buf)
	keyEnd := len(buf)
	if len(r.Joins) > 0 {
		buf = r.appendEncoded(buf)
	}
	return memberEntry{buf: buf, keyEnd: keyEnd, key: string(buf[8:keyEnd])}, nil
}

// putEntry stores e, the encoding of r, in place of its member's record,
// or deletes the record when r holds no joins. It may run again for the
// same e (when a write grouped with it failed): it only ever sets e's
// sequence number.
func (t *storeTx) putEntry(e memberEntry, r memberRecord) error {
	log := t.memberLog()
	if old, ok := t.lookup(e.buf[8:e.keyEnd]); ok {
		if err := log.Delete(seqKey(old.seq)); err != nil {
			return err
		}
	}
	if t.changed == nil {
		t.changed = make(map[string]indexedMember)
	}
	if len(r.Joins) == 0 {
		t.changed[e.key] = indexedMember{}
		return nil
	}
	seq, err := log.NextSequence()
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(e.buf, seq)
	if err := log.Put(e.buf[:8:8], e.buf[8:]); err != nil {
		return err
	}
	t.changed[e.key] = newIndexedMember(seq, e.buf[e.keyEnd:], r.leased())
	return nil
}

// leaseMembers lists the members holding joins under lease id, in key
// order, as this transaction sees them.
func leaseMembers(t *storeTx, id string) ([]memberKey, error) {
	held := make(map[string]struct{})
	for key := range t.index.byLease[id] {
		held[key] = struct{}{}
	}
	for key, e := range t.changed {
		delete(held, key)
		if !e.leased {
			continue
		}
		r, err := decodeRecord(e.record)
		if err != nil {
			return nil, err
		}
		if r.Joins[id] > 0 {
			held[key] = struct{}{}
		}
	}
	return sortedMemberKeys(held)
}

// leaseHolders lists the members holding joins under lease id and their
// records, as last committed, in key order.
func (x *memberIndex) leaseHolders(id string) ([]memberKey, []memberRecord, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	keys, err := sortedMemberKeys(x.byLease[id])
	if err != nil {
		return nil, nil, err
	}
	records := make([]memberRecord, len(keys))
	for i, k := range keys {
		r, err := decodeRecord(x.members[string(k.encode())].record)
		if err != nil {
			return nil, nil, err
		}
		records[i] = r
	}
	return keys, records, nil
}

// sortedMemberKeys decodes a set of encoded keys, in order.
func sortedMemberKeys(set map[string]struct{}) ([]memberKey, error) {
	keys := make([]memberKey, 0, len(set))
	for key := range set {
		k, err := decodeMemberKey([]byte(key))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b memberKey) int {
		return cmp.Or(cmp.Compare(a.scope, b.scope), cmp.Compare(a.group, b.group), cmp.Compare(a.member, b.member))
	})
	return keys, nil
}
