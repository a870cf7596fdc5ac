package main

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The first layout of the data file kept each member's record (JSON) under
// its key in a bucket ordered by name, and a second bucket of the members
// each lease held. A file of that layout is converted to the log at open,
// in the transaction that checks it, so a crash midway leaves it as it was.
const storeFormatV1 = "cpgd data v1"

var (
	bucketMembersV1  = []byte("members")
	bucketBindingsV1 = []byte("lease-members")
)

// memberRecordV1 is a member's record as the first layout stored it.
type memberRecordV1 struct {
	Meta  map[string]string `json:"meta,omitempty"`
	Joins map[string]uint32 `json:"joins"`
}

// convertFromV1 moves every member's record into the log, drops the first
// layout's buckets and marks the file with today's format.
func convertFromV1(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
		return err
	}
	stx := storeTx{tx: tx, index: &memberIndex{}}
	if members := tx.Bucket(bucketMembersV1); members != nil {
		err := members.ForEach(func(k, v []byte) error {
			mk, err := decodeMemberKey(k)
			if err != nil {
				return err
			}
			var r memberRecordV1
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("member %q of %q in scope %q: bad record: %w", mk.member, mk.group, mk.scope, err)
			}
			if len(r.Joins) == 0 {
				return fmt.Errorf("member %q of %q in scope %q: a record without joins", mk.member, mk.group, mk.scope)
			}
			return putMember(&stx, mk, memberRecord{Meta: r.Meta, Joins: r.Joins})
		})
		if err != nil {
			return err
		}
	}
	for _, b := range [][]byte{bucketMembersV1, bucketBindingsV1} {
		if tx.Bucket(b) != nil {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, []byte(storeFormat))
}
